"""Every kind of control edge on jobs that print what they do -- workflow ``control_edges``.

No ML library: each job prints a line and sends the events (or makes the model version / dataset
update) that drive the next rule, so the execution ends FINISHED on its own in a few seconds:

    tideflow run examples/control_edges/workflow.py --timeout 120

    extract ──DATA_READY raw──► clean (on_event)
    clean RUNNING ────────────► profile (with_start)
    clean + profile FINISHED ─► join (after, two upstreams)
    join: FEATURES_READY features + LABELS_READY labels ─► train (on_events, all_of)
    train: model version GENERATED ─► validate (on_model_version)
    validate: dataset updated ──────► publish (on_dataset)
    publish: PUBLISHED or SKIPPED ──► notify (on_events, any_of)

``start_on`` / ``stop_on`` are declared too: sending ``KICKOFF`` (key ``control_edges.kickoff``)
starts a new execution, ``ABORT`` (key ``control_edges.abort``) stops a running one.
"""

import time

import tideflow as tide

MODEL = "control_edges_model"
REPORT = "control_edges_report"


def say(ctx, text):
    print(f"[{ctx.job} attempt {ctx.attempt}] {text}", flush=True)


def extract(ctx, inputs):
    say(ctx, "extracting raw rows; sending DATA_READY raw")
    ctx.send_event("raw", "100 rows", event_type="DATA_READY")


def clean(ctx, inputs):
    say(ctx, "started by DATA_READY raw (on_event); cleaning for a moment")
    time.sleep(0.5)  # long enough for profile, started alongside, to be seen running with it
    say(ctx, "clean done")


def profile(ctx, inputs):
    say(ctx, "started because clean is RUNNING (with_start); profiling")


def join(ctx, inputs):
    say(ctx, "clean and profile both FINISHED (after); sending FEATURES_READY and LABELS_READY")
    ctx.send_event("features", "ok", event_type="FEATURES_READY")
    ctx.send_event("labels", "ok", event_type="LABELS_READY")


def train(ctx, inputs):
    say(ctx, "features AND labels ready (on_events all_of); logging a model version")
    models = ctx.client.models
    try:
        models.get(MODEL)
    except tide.TideflowError:
        models.create(MODEL, description="made by examples/control_edges")
    version = models.create_version(
        MODEL, metrics={"score": 0.9}, job_execution_id=ctx.job_execution_id
    )
    say(ctx, f"model {MODEL} version {version.version} GENERATED")


def validate(ctx, inputs):
    say(ctx, "a new model version was GENERATED (on_model_version); validating it")
    datasets = ctx.client.datasets
    try:
        datasets.get(REPORT)
    except tide.TideflowError:
        datasets.register(REPORT, uri="memory://report", format="json")
    else:
        datasets.update(REPORT, description=f"validated in execution {ctx.execution_id}")
    say(ctx, f"dataset {REPORT} updated")


def publish(ctx, inputs):
    say(ctx, f"dataset {REPORT} was updated (on_dataset); publishing; sending PUBLISHED")
    ctx.send_event("release", "v1", event_type="PUBLISHED")


def notify(ctx, inputs):
    say(ctx, "PUBLISHED or SKIPPED arrived (on_events any_of); all done")


with tide.workflow("control_edges") as wf:
    for function in (extract, clean, profile, join, train, validate, publish, notify):
        with tide.job(function.__name__):
            tide.user_node(processor=function, name=function.__name__)

    # extract has no START rule: it starts with the execution.
    wf.on_event("clean", "raw", event_type="DATA_READY")
    wf.with_start("profile", "clean")
    wf.after("join", "clean", "profile")
    wf.on_events(
        "train",
        tide.all_of(
            tide.EventMatch(key="features", event_type="FEATURES_READY"),
            tide.EventMatch(key="labels", event_type="LABELS_READY"),
        ),
    )
    wf.on_model_version("validate", model=MODEL, event=tide.ModelVersionEvent.GENERATED)
    wf.on_dataset("publish", REPORT)
    wf.on_events(
        "notify",
        tide.any_of(
            tide.EventMatch(key="release", event_type="PUBLISHED"),
            tide.EventMatch(key="release", event_type="SKIPPED"),
        ),
    )
    wf.start_on(tide.EventMatch(key="control_edges.kickoff", event_type="KICKOFF"))
    wf.stop_on(tide.EventMatch(key="control_edges.abort", event_type="ABORT"))
