"""The stdlib ``imaplib`` utility functions: INTERNALDATE, FLAGS and tag prefixes, sans-IO.

Every function here gives the newest stdlib's result for every input: the same values of the
same types, and the same exceptions with the same messages. The tests hold each one against the
running ``imaplib`` on random input. The differences, each one deliberate:

- ``Internaldate2tuple`` returns ``None`` (the documented "wrong format" answer) where the
  stdlib crashes on a date a server sent: an unknown month name such as ``b"Foo"`` (the stdlib
  raises ``KeyError``), year ``0000`` (``ValueError``), and a moment the platform's
  ``localtime()`` cannot represent (``OverflowError``/``OSError``, e.g. before 1970 on Windows).
- ``Time2Internaldate`` always writes a four-digit year, as the stdlib does from 3.14 on (and
  on every platform but Linux before that): 3.9-3.13 on Linux write year 999 as ``999``, which
  is not a valid IMAP ``date-year``.
- ``Int2AP`` raises ``ValueError`` when ``abs(num)`` is negative (only possible with a broken
  ``__abs__``); the stdlib loops for ever.

The module-level names (``Months``, ``Mon2num``, ``InternalDate``, ``Flags``, ``MapCRLF``) are
public attributes of the stdlib module that callers use directly; the patterns match exactly
what the stdlib's match, with the same group names.
"""

from __future__ import annotations

import re
import time
from datetime import date, datetime, timedelta, timezone

# typing costs about 1 MiB at start-up; annotations only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, SupportsAbs, SupportsInt, Tuple, Union

    from _typeshed import ReadableBuffer

    _TimeTuple = Tuple[int, int, int, int, int, int, int, int, int]

__all__ = [
    "Flags",
    "Int2AP",
    "InternalDate",
    "Internaldate2tuple",
    "MapCRLF",
    "Mon2num",
    "Months",
    "ParseFlags",
    "Time2Internaldate",
]

#: Month abbreviations as IMAP writes them, indexed by month number (index 0 is empty).
Months: List[str] = [
    "", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
]  # fmt: skip
#: Month abbreviation (bytes) to month number.
Mon2num: Dict[bytes, int] = {
    name.encode("ascii"): number for number, name in enumerate(Months) if name
}

#: The FLAGS list of a response: the last ``FLAGS (`` on the first line that a ``)`` closes.
Flags = re.compile(rb".*FLAGS \((?P<flags>[^)]*)\)")
#: An INTERNALDATE item: the last well-formed one on the first line.
InternalDate = re.compile(
    rb'.*INTERNALDATE "'
    rb"(?P<day>[ 0-3][0-9])-(?P<mon>[A-Z][a-z]{2})-(?P<year>[0-9]{4}) "
    rb"(?P<hour>[0-9]{2}):(?P<min>[0-9]{2}):(?P<sec>[0-9]{2}) "
    rb'(?P<zonen>[-+])(?P<zoneh>[0-9]{2})(?P<zonem>[0-9]{2})"'
)
#: Any line ending (CRLF, lone CR, lone LF), for normalising a message to CRLF.
MapCRLF = re.compile(rb"\r\n?|\n")

# For a one-line bytes response the fast paths find the keyword from the right with bytes
# methods and check only what follows it, instead of letting ``.*`` run to the end of the line
# and backtrack; anything else goes through the patterns above.
_INTERNALDATE_KEY = b'INTERNALDATE "'
_INTERNALDATE_BODY = re.compile(
    rb"([ 0-3][0-9])-([A-Z][a-z]{2})-([0-9]{4}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) "
    rb'([-+])([0-9]{2})([0-9]{2})"'
)
_FLAGS_KEY = b"FLAGS ("
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_INTERNALDATE_FORMAT = '"%02d-%s-%04d %02d:%02d:%02d %s%02d%02d"'
_TO_AP = bytes.maketrans(b"0123456789abcdef", b"ABCDEFGHIJKLMNOP")


def Internaldate2tuple(resp: ReadableBuffer) -> Optional[time.struct_time]:
    """Parse the INTERNALDATE in a FETCH response into local time.

    Returns a ``time.struct_time`` in the local time zone, or ``None`` when the response holds
    no well-formed INTERNALDATE on its first line (or names a date that does not exist).
    """
    fields: Tuple[bytes, ...]
    if type(resp) is bytes and 10 not in resp:  # no LF
        end = len(resp)
        while True:
            at = resp.rfind(_INTERNALDATE_KEY, 0, end)
            if at < 0:
                return None
            found = _INTERNALDATE_BODY.match(resp, at + len(_INTERNALDATE_KEY))
            if found is not None:
                break
            # Try the next occurrence to the left (one that starts before ``at``).
            end = at + len(_INTERNALDATE_KEY) - 1
        fields = found.groups()
    else:
        # Several lines (rare): only the first one counts, the stdlib's pattern says how.
        matched = InternalDate.match(resp)
        if matched is None:
            return None
        fields = matched.groups()
    day, mon, year, hour, minute, second, sign, zone_hours, zone_minutes = fields
    try:
        month = Mon2num[mon]
        days = date(int(year), month, 1).toordinal() - _EPOCH_ORDINAL + int(day) - 1
    except (KeyError, ValueError):
        # Unknown month name, or year 0: the stdlib crashes here (KeyError, ValueError).
        return None
    offset = (int(zone_hours) * 60 + int(zone_minutes)) * 60
    if sign == b"-":
        offset = -offset
    utc = ((days * 24 + int(hour)) * 60 + int(minute)) * 60 + int(second) - offset
    try:
        return time.localtime(utc)
    except (OverflowError, OSError):
        return None


def Int2AP(num: SupportsAbs[SupportsInt]) -> bytes:
    """Write ``abs(num)`` in base 16 with the digits A-P (0 gives ``b""``): a command tag prefix."""
    value = int(abs(num))
    if value <= 0:
        if value == 0:
            return b""
        raise ValueError("Int2AP() needs abs(num) to be non-negative")
    return (b"%x" % value).translate(_TO_AP)


def ParseFlags(resp: ReadableBuffer) -> Tuple[bytes, ...]:
    """Return the flags of the last ``FLAGS (...)`` on a response's first line, or ``()``."""
    if type(resp) is bytes and 10 not in resp:  # no LF
        # One line (the usual case): the last "FLAGS (" is the one, if a ")" closes it.
        _, key, tail = resp.rpartition(_FLAGS_KEY)
        if key:
            flags, close, _ = tail.partition(b")")
            if close:
                return tuple(flags.split())
    # Otherwise let the stdlib's pattern decide: only the first line counts, and when the
    # last "FLAGS (" is never closed an earlier one may be.
    matched = Flags.match(resp)
    if matched is None:
        return ()
    return tuple(matched.group("flags").split())


def _local_utc_offset(local: Tuple[Any, ...]) -> Any:
    # A plain 9-tuple is local time: ask the C library which offset applied then.
    if not time.daylight:
        return -time.timezone
    is_dst = local[8]
    if is_dst == -1:
        is_dst = time.localtime(time.mktime(local))[8]
    return -(time.timezone, time.altzone)[is_dst]


def Time2Internaldate(
    date_time: Union[float, time.struct_time, _TimeTuple, datetime, str],
) -> str:
    """Write a moment as an IMAP INTERNALDATE, quotes included: ``'"DD-Mmm-YYYY HH:MM:SS +HHMM"'``.

    ``date_time`` may be seconds since the epoch (int or float), a ``time.struct_time`` (its
    ``tm_gmtoff`` gives the offset), a 9-tuple in local time, an aware ``datetime``, or a string
    already in double quotes, which is returned unchanged.
    """
    moment: datetime
    if isinstance(date_time, (int, float)):
        moment = datetime.fromtimestamp(date_time, timezone.utc).astimezone()
    elif isinstance(date_time, tuple):
        stamp: Any = date_time  # a struct_time, a 9-tuple, or whatever the caller passed
        try:
            gmtoff = stamp.tm_gmtoff
        except AttributeError:
            gmtoff = _local_utc_offset(stamp)
        offset = timedelta(seconds=gmtoff)
        moment = datetime(*stamp[:6], tzinfo=timezone(offset))  # type: ignore[misc]
    elif isinstance(date_time, datetime):
        if date_time.tzinfo is None:
            raise ValueError("date_time must be aware")
        moment = date_time
    elif isinstance(date_time, str) and date_time[0] == '"' and date_time[-1] == '"':
        return date_time
    else:
        raise ValueError("date_time not of a known type")
    if type(moment) is datetime and type(moment.tzinfo) is timezone:
        # A fixed offset (always the case unless the caller passed a datetime): format it
        # directly when it is whole minutes, which is what strftime's %z would write.
        delta = moment.utcoffset()
        assert delta is not None  # a timezone instance always has an offset
        seconds = delta.days * 86400 + delta.seconds
        if not delta.microseconds and not seconds % 60:
            sign = "+"
            if seconds < 0:
                sign = "-"
                seconds = -seconds
            return _INTERNALDATE_FORMAT % (
                moment.day,
                Months[moment.month],
                moment.year,
                moment.hour,
                moment.minute,
                moment.second,
                sign,
                seconds // 3600,
                seconds // 60 % 60,
            )
    # The year is written here rather than with %Y, which some C libraries do not zero-pad.
    return moment.strftime('"%%d-%s-%04d %%H:%%M:%%S %%z"' % (Months[moment.month], moment.year))
