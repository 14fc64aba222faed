"""The workflow the crash suite drives, copied into its code package as ``crashflow.py``.

Every job appends one line to the record file when its process runs: its job execution id,
attempt and pid. A job execution id seen twice means one command ran a job twice.

    a ──GO event──► b (on_event)          s: streaming, restarted, then stopped by the test
    a, b ─────────► c (after, two upstreams)
    timer ────────► tick (periodic, 60 s on the test clock)
    c, tick ──────► d (after)   d FINISHED ──► stop_on: the execution ends STOPPED
"""

import json
import os
import time

import tideflow as tide

WORKFLOW = "crashflow"


def _mark(path, ctx):
    line = {
        "job": ctx.job,
        "attempt": ctx.attempt,
        "job_execution_id": ctx.job_execution_id,
        "pid": os.getpid(),
    }
    with open(path, "a") as out:  # one short O_APPEND write: lines never interleave
        out.write(json.dumps(line) + "\n")


class Mark:
    """Records its run; optionally sends an event (which drives the next rule)."""

    def __init__(self, record, send=None):
        self.record = record
        self.send = send

    def process(self, ctx, inputs):
        _mark(self.record, ctx)
        if self.send:
            ctx.send_event(self.send, "1", event_type="GO")


class Stream:
    """A streaming job: records its run, then runs until stopped."""

    def __init__(self, record):
        self.record = record

    def process(self, ctx, inputs):
        _mark(self.record, ctx)
        while True:
            time.sleep(0.05)


def build(record):
    with tide.workflow(WORKFLOW) as wf:
        for job, processor in (
            ("a", Mark(record, send="go")),
            ("b", Mark(record)),
            ("c", Mark(record)),
            ("tick", Mark(record)),
            ("d", Mark(record)),
        ):
            with tide.job(job):
                tide.user_node(processor=processor, name=f"{job}_node")
        with tide.job("s", streaming=True):
            tide.user_node(processor=Stream(record), name="s_node")
        wf.on_event("b", "go", event_type="GO")
        wf.after("c", "a", "b")
        wf.periodic("tick", interval=60)
        wf.after("d", "c", "tick")
        wf.stop_on(
            tide.EventMatch(key=f"{WORKFLOW}.d", event_type="JOB_STATUS_CHANGED", value="FINISHED")
        )
    return wf
