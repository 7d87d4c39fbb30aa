"""The admin's shared plumbing, in six parts:

- `site.py`: the project's AdminSite (made the default site by
  omnitron.apps.AdminConfig), which registers every ModelAdmin, this project's and
  other apps' (auth, authtoken, procrastinate), with `CheckedInputMixin` in front, and
  other apps' pages that reach every channel as superusers' only;
- `checked_input.py`: what every admin page takes from a request: from the query
  string only the lookups its list filters make, with values their columns hold; as
  an object id or an action's selection only values of the pk; in a form (its
  inlines' too) only JSON that PostgreSQL's jsonb stores, and a related row shown
  again only when the posted value can be one; and a delete a capture overtook;
- `large_tables.py`: lists that cost the same with millions of rows. Django's change
  list counts every row it could show, twice, and its search compares substrings,
  which reads every row: on 2 million orders that is seconds per page.
  `LargeTableAdmin` counts at most `COUNT_CAP` rows and searches whole values on
  indexed columns;
- `pages.py`: read-only pages, and change forms that write only what changed.
- `deletes.py`: what a delete page lists as deleted with the row, a hundred of each
  kind at most.
- `dates.py`: the date filters, in UTC (the formats, with seconds and the zone's
  name, are omnitron/formats/).

docs/operations.md says what operators see."""
