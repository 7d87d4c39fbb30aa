"""webhook_worker's --queues: a name no task uses (a typo, an empty name) is refused
with a message, as a bad --concurrency is (helper 124). Taken as given, `--queues
webhook` started a worker that sat idle, exit 0 and no warning: no webhook sent, no
prune run, until someone noticed the backlog."""

import pytest
from django.core.management import CommandError, call_command

from events.management.commands import webhook_worker


@pytest.fixture
def started(monkeypatch):
    """The worker options a run would start with, instead of starting it."""
    runs = []

    async def supervise(worker_options):
        runs.append(worker_options)

    monkeypatch.setattr(webhook_worker, "supervise", supervise)
    return runs


@pytest.mark.parametrize(
    "queues", ["webhook", "Webhooks", "nope", ",", "webhooks,", "maintenance,mainteance"]
)
def test_a_queue_no_task_uses_is_refused(started, queues):
    with pytest.raises(CommandError, match=r"^--queues: no task of this app uses .*\(its queues: "
                       r"builtin, maintenance, webhooks\)\.$"):  # fmt: skip
        call_command("webhook_worker", "--queues", queues)
    assert started == []


@pytest.mark.parametrize(
    "queues", ["webhooks,maintenance", "maintenance", " webhooks , maintenance "]
)
def test_the_queues_tasks_use_are_taken(started, queues):
    call_command("webhook_worker", "--queues", queues)
    assert sorted(started[0]["queues"]) == sorted(q.strip() for q in queues.split(","))
