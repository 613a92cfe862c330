"""Enqueue pipeline work. Call these from `transaction.on_commit`, never before commit."""


def enqueue_decide(run_id: int) -> None:
    from automations.tasks import decide_run

    decide_run.apply_async(args=[run_id])


def enqueue_execute(run_id: int, countdown: float = 0) -> None:
    from automations.tasks import execute_run

    execute_run.apply_async(args=[run_id], countdown=countdown or None)


def enqueue_compensate(run_id: int) -> None:
    from automations.tasks import compensate_run

    compensate_run.apply_async(args=[run_id])
