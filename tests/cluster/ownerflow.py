"""The workflow of the attempt-ownership tests, copied into its code package as ``ownerflow.py``.

One batch job ``work`` (one retry). Each run appends one line to the record file (attempt,
job execution id, pid); the first attempt then waits for the release file before it ends, so
the test decides when it ends (and kills its server, or its process, while it runs).
"""

import json
import os
import time

import tideflow as tide

WORKFLOW = "owned"


class Work:
    """Records its run; the first attempt waits for the release file."""

    def __init__(self, record, release):
        self.record = record
        self.release = release

    def process(self, ctx, inputs):
        line = {
            "attempt": ctx.attempt,
            "job_execution_id": ctx.job_execution_id,
            "pid": os.getpid(),
        }
        with open(self.record, "a") as out:  # one short O_APPEND write
            out.write(json.dumps(line) + "\n")
        while ctx.attempt == 1 and not os.path.exists(self.release):
            time.sleep(0.05)


def build(record, release):
    with tide.workflow(WORKFLOW) as wf, tide.job("work", retries=1):
        tide.user_node(processor=Work(record, release), name="work_node")
    return wf
