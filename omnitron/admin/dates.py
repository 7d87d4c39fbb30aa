"""Dates in the admin, for operators reconciling a day against a settlement file:
every date-time is shown in UTC with its seconds and says so (omnitron/formats/), and
the date filters name their time zone and offer yesterday."""

from datetime import timedelta

from django.contrib.admin import DateFieldListFilter
from django.utils import timezone


class UtcDayFilter(DateFieldListFilter):
    """Django's date filter, titled with its time zone (TIME_ZONE, UTC), with a link
    for yesterday, and "Past 7 days" named for what it is: today and the 7 days before."""

    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)
        self.title = f"{self.title} ({timezone.get_current_timezone_name()})"
        any_date, today, past_week, *rest = self.links
        start = today[1][self.lookup_kwarg_since]
        yesterday = {self.lookup_kwarg_since: start - timedelta(days=1),
                     self.lookup_kwarg_until: start}  # fmt: skip
        self.links = (any_date, today, ("Yesterday", yesterday),
                      ("Today and the 7 days before", past_week[1]), *rest)  # fmt: skip
