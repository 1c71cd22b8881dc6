"""Arabic dates and numbers as Livra's Moroccan and Gulf users read them.

Django's own Arabic formats leave the date and time formats to English ("ديسمبر 3, 2026, 2:05 م")
and never group thousands. Livra writes day before month with a 24-hour clock, as its French
pages do, and groups the thousands of amounts (when grouping is asked for) with a narrow
no-break space, which reads the same in either direction. Digits stay Western (0-9), as in
Moroccan usage. Only what differs from Django's formats is set here.
"""

DATE_FORMAT = "j F Y"
TIME_FORMAT = "H:i"
DATETIME_FORMAT = "j F Y، H:i"
YEAR_MONTH_FORMAT = "F Y"
MONTH_DAY_FORMAT = "j F"
SHORT_DATE_FORMAT = "d/m/Y"
SHORT_DATETIME_FORMAT = "d/m/Y H:i"
FIRST_DAY_OF_WEEK = 1  # Monday
DECIMAL_SEPARATOR = ","
THOUSAND_SEPARATOR = "\u202f"
NUMBER_GROUPING = 3
