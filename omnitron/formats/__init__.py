"""The admin's date formats (FORMAT_MODULE_PATH): Django's English ones show
`Nov. 29, 2026, 11:59 p.m.`, without seconds or time zone, so an operator could not
match a capture to a settlement file's line, nor tell UTC from local time."""
