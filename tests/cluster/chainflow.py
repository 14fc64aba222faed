"""The workflow of the failover suite, copied into its code package as ``chainflow.py``.

Ten batch jobs, each started ``after`` the one before: ``j0 -> j1 -> ... -> j9``. Every job
appends one line to the record file when its process runs (execution id, job, attempt, job
execution id, pid), so the test counts the runs of each job per execution.
"""

import json
import os
import time

import tideflow as tide

WORKFLOW = "chain"
LENGTH = 10


class Mark:
    """Records its run with one short ``O_APPEND`` write (lines never interleave)."""

    def __init__(self, record):
        self.record = record

    def process(self, ctx, inputs):
        line = {
            "execution_id": ctx.execution_id,
            "job": ctx.job,
            "attempt": ctx.attempt,
            "job_execution_id": ctx.job_execution_id,
            "pid": os.getpid(),
        }
        with open(self.record, "a") as out:
            out.write(json.dumps(line) + "\n")
        time.sleep(float(ctx.params.get("hold", 0)))  # the job's "work": kills land in it


def build(record):
    with tide.workflow(WORKFLOW) as wf:
        for i in range(LENGTH):
            with tide.job(f"j{i}"):
                tide.user_node(processor=Mark(record), name=f"j{i}_node")
        for i in range(1, LENGTH):
            wf.after(f"j{i}", f"j{i - 1}")
    return wf
