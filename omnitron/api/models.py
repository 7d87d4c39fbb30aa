from django.db import models


class RateCounter(models.Model):
    """Requests allowed per throttle key and fixed time window, shared by every app
    process (so limits hold across replicas); omnitron/api/throttling.py slides over a
    key's current window and the one before. The table is UNLOGGED (migration 0002):
    counters are not worth a disk flush per request, and losing them in a database
    crash only resets the current windows."""

    key = models.CharField(max_length=128)
    window_start = models.BigIntegerField(help_text="Unix time the window began.")
    hits = models.PositiveIntegerField(default=0)
    # Only carries the upsert's decision back through RETURNING (a refused request is
    # not counted, so `hits` alone cannot tell). A default in the database too: the
    # release before writes rows without it.
    allowed = models.BooleanField(
        default=True, db_default=True, help_text="Whether the key's last request was allowed."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["key", "window_start"], name="uniq_rate_key_window")
        ]
        indexes = [models.Index(fields=["window_start"], name="rate_window_idx")]

    def __str__(self):
        return f"{self.key} @ {self.window_start}: {self.hits}"
