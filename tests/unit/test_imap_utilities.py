"""mailwire._imap.dates against the running stdlib ``imaplib`` as the oracle.

Every property compares the outcome of the stdlib function and of mailwire's on the same input:
the same value of the same type, or the same exception type with the same message. The only
differences allowed are the registered deviations, each tested on its own at the end.

The functions that depend on the local time zone run under several zones (``TZ`` plus
``time.tzset()``), with and without DST, east and west of Greenwich, with half-hour offsets.
"""

from __future__ import annotations

import ast
import contextlib
import imaplib
import os
import re
import subprocess
import sys
import textwrap
import time
from collections import namedtuple
from datetime import date, datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mailwire._imap import dates

SOURCE = Path(dates.__file__)

# ---------------------------------------------------------------------------------------------
# Comparing outcomes


def outcome(function: Callable[..., Any], *args: Any) -> tuple[Any, ...]:
    """What a call did, in a form that compares equal only for identical behaviour."""
    try:
        value = function(*args)
    except Exception as exc:
        return ("raised", type(exc), str(exc))
    if isinstance(value, time.struct_time):
        return ("struct_time", tuple(value), value.tm_zone, value.tm_gmtoff)
    if isinstance(value, tuple):
        return ("tuple", value, tuple(type(item) for item in value))
    return ("value", type(value), value)


# 3.14 (and every platform but Linux) zero-pads %Y; 3.9-3.13 on Linux write year 999 as "999".
# mailwire follows the newest stdlib, so the older oracle's short years are padded before
# comparing. Strings are passed through unchanged by both and are never touched.
STDLIB_PADS_YEAR = datetime(5, 1, 1).strftime("%Y") == "0005"
_SHORT_YEAR = re.compile(r'"(\d\d-[A-Z][a-z][a-z])-(\d{1,3}) ')


def stdlib_time2internaldate(date_time: Any) -> str:
    result: str = imaplib.Time2Internaldate(date_time)
    if not STDLIB_PADS_YEAR and not isinstance(date_time, str):
        result = _SHORT_YEAR.sub(lambda m: f'"{m.group(1)}-{int(m.group(2)):04d} ', result, 1)
    return result


def assert_time2internaldate_same(date_time: Any) -> None:
    expected = outcome(stdlib_time2internaldate, date_time)
    assert outcome(dates.Time2Internaldate, date_time) == expected


def stdlib_internaldate2tuple(resp: Any) -> Optional[time.struct_time]:
    """The stdlib, with the registered deviation applied: its crashes on a month name it does
    not know (KeyError) and on year 0000 (ValueError) become the documented ``None``."""
    try:
        result: Optional[time.struct_time] = imaplib.Internaldate2tuple(resp)
    except KeyError:
        return None
    except ValueError as exc:
        if str(exc) == "year 0 is out of range":
            return None
        raise
    return result


def assert_internaldate2tuple_same(resp: Any) -> None:
    expected = outcome(stdlib_internaldate2tuple, resp)
    assert outcome(dates.Internaldate2tuple, resp) == expected


# ---------------------------------------------------------------------------------------------
# Local time zones

# (TZ value, time.timezone it must give, whether it has DST). Named zones need the system's tz
# database; the POSIX rules work without one, so DST and a negative offset are always covered.
ZONES = [
    ("UTC0", 0, False),
    ("Europe/Berlin", -3600, True),
    ("America/New_York", 5 * 3600, True),
    ("America/St_Johns", 3 * 3600 + 1800, True),
    ("Asia/Kolkata", -(5 * 3600 + 1800), False),
    ("Australia/Lord_Howe", -(10 * 3600 + 1800), True),
    ("CET-1CEST,M3.5.0,M10.5.0/3", -3600, True),
    ("EST5EDT,M3.2.0,M11.1.0", 5 * 3600, True),
    ("<-03>3", 3 * 3600, False),
]
NAMED_ZONE = re.compile(r"[A-Z][A-Za-z_]+/[A-Za-z_/]+")
ZONEINFO = Path("/usr/share/zoneinfo")


@contextlib.contextmanager
def local_zone(name: str) -> Iterator[None]:
    saved = os.environ.get("TZ")
    os.environ["TZ"] = name
    time.tzset()
    try:
        yield
    finally:
        if saved is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved
        time.tzset()


needs_tzset = pytest.mark.skipif(not hasattr(time, "tzset"), reason="time.tzset() is Unix-only")


@pytest.fixture(scope="class", params=ZONES, ids=[zone[0] for zone in ZONES])
def zone(request: pytest.FixtureRequest) -> Iterator[str]:
    name, offset, has_dst = request.param
    if NAMED_ZONE.fullmatch(name) and not (ZONEINFO / name).is_file():
        pytest.skip(f"the tz database has no {name}")
    with local_zone(name):
        # A TZ the C library does not understand silently means UTC: make sure it took.
        assert time.timezone == offset
        assert bool(time.daylight) == has_dst
        yield name


# ---------------------------------------------------------------------------------------------
# Strategies

DATETIME_SECONDS = st.integers(min_value=-62135596800, max_value=253402300799)  # years 1-9999
timestamps = st.one_of(
    DATETIME_SECONDS,
    st.integers(min_value=-(2**64), max_value=2**64),  # mostly out of range: errors compared
    st.floats(min_value=-62135596800.0, max_value=253402300799.0),
    st.floats(),  # includes nan, inf, -0.0, subnormals
    st.booleans(),
    st.sampled_from([0, -1, 1, 0.5, -0.5, 0.9999994, 0.9999996, 1e-7, -1e-7, 2**31, -(2**31)]),
    st.sampled_from([253402300799, 253402300800, -62135596800, -62135596801, 1e300, -1e300]),
)

DST_VALUES = st.one_of(
    st.sampled_from([-1, 0, 1]),
    st.sampled_from([2, -2, True, False, -1.0, 0.0, 1.5, None, 10**20]),
)
nine_tuples = st.tuples(
    st.one_of(st.integers(1, 9999), st.sampled_from([0, -1, 10000, 1969, 1970, 2038])),
    st.one_of(st.integers(1, 12), st.sampled_from([0, 13])),
    st.one_of(st.integers(1, 31), st.sampled_from([0, 32])),
    st.one_of(st.integers(0, 23), st.sampled_from([24, -1])),
    st.integers(0, 59),
    st.one_of(st.integers(0, 59), st.sampled_from([60, 61])),
    st.integers(0, 6),
    st.integers(1, 366),
    DST_VALUES,
)

offsets = st.timedeltas(
    min_value=timedelta(hours=-24) + timedelta(microseconds=1),
    max_value=timedelta(hours=24) - timedelta(microseconds=1),
)
whole_minute_offsets = st.integers(-(24 * 60) + 1, 24 * 60 - 1).map(lambda m: timedelta(minutes=m))
aware_datetimes = st.one_of(
    st.datetimes(timezones=st.builds(timezone, offsets)),
    st.datetimes(timezones=st.builds(timezone, whole_minute_offsets)),
    st.datetimes(timezones=st.timezones()),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(999, 12, 31)).map(
        lambda moment: moment.replace(tzinfo=timezone.utc)
    ),
)


def _two_digits(low: int, high: int) -> st.SearchStrategy[bytes]:
    return st.integers(low, high).map(lambda n: b"%02d" % n)


MONTH_NAMES = st.one_of(
    st.sampled_from([name.encode() for name in imaplib.Months[1:]]),
    st.sampled_from([b"Foo", b"Jun", b"Xyz", b"jan", b"JAN", b"Ja", b"Janu", b"J\xe4n"]),
)
internaldate_values = st.builds(
    lambda day, mon, year, hh, mm, ss, sign, zh, zm: (
        day + b"-" + mon + b"-" + year + b" " + hh + b":" + mm + b":" + ss + b" " + sign + zh + zm
    ),
    st.one_of(_two_digits(0, 39), st.sampled_from([b" 1", b" 9", b" 0", b"40", b"1 ", b"9"])),
    MONTH_NAMES,
    st.one_of(
        st.integers(0, 9999).map(lambda n: b"%04d" % n),
        st.sampled_from([b"0000", b"0001", b"1969", b"1970", b"2038", b"9999", b"999", b"12345"]),
    ),
    _two_digits(0, 99),
    _two_digits(0, 99),
    _two_digits(0, 99),
    st.sampled_from([b"+", b"-", b" ", b"*"]),
    _two_digits(0, 99),
    _two_digits(0, 99),
)
FILLER = st.lists(
    st.sampled_from(
        [b"1 (", b"UID 7 ", b"FLAGS (\\Seen) ", b")", b" ", b"\n", b"\r\n", b'"', b"INTERNALDATE",
         b'INTERNALDATE "', b"INTERNALDATE ", b"x", b"\xff", b"\x00", b"{12}"]
    ),
    max_size=6,
).map(b"".join)  # fmt: skip


@st.composite
def internaldate_responses(draw: st.DrawFn) -> bytes:
    """FETCH-like responses with zero, one or several INTERNALDATE items, some malformed."""
    items = draw(
        st.lists(
            st.tuples(
                FILLER,
                st.sampled_from([b'INTERNALDATE "', b"INTERNALDATE ", b'INTERNALDATE  "', b""]),
                internaldate_values,
                st.sampled_from([b'"', b"", b'""', b"'"]),
            ),
            min_size=0,
            max_size=3,
        )
    )
    body = b"".join(filler + key + value + close for filler, key, value, close in items)
    data = body + draw(FILLER)
    # Now and then damage one byte.
    if data and draw(st.booleans()):
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + draw(st.binary(min_size=0, max_size=2)) + data[at + 1 :]
    return data


flag_responses = st.one_of(
    st.lists(
        st.sampled_from(
            [b"FLAGS (", b"FLAGS", b"FLAGS  (", b"flags (", b"(", b")", b" ", b"\n", b"\r\n",
             b"\t", b"\\Seen", b"\\Answered", b"$Label", b"1", b"UID 3", b"\\*", b"[x]", b"\x00",
             b"\xff", b"\x0b", b"\x1c", b"INTERNALDATE"]
        ),
        max_size=12,
    ).map(b"".join),
    st.binary(max_size=40),
    st.lists(
        st.tuples(
            st.sampled_from([b"", b" ", b"1 (", b"UID 5 ", b"\n", b"x)", b"(", b"FLAGS"]),
            st.sampled_from([b"FLAGS (", b"FLAGS ", b"FLAGS  ("]),
            st.lists(st.sampled_from([b"\\Seen", b"$L", b"a", b"", b" ", b"("]), max_size=3),
            st.sampled_from([b")", b"", b"))", b" )", b"\n)"]),
        ),
        max_size=4,
    ).map(lambda items: b"".join(pre + key + b" ".join(fl) + end for pre, key, fl, end in items)),
)  # fmt: skip

# ---------------------------------------------------------------------------------------------
# Module-level names and patterns


def test_public_names_match_stdlib() -> None:
    assert dates.Months == imaplib.Months
    assert type(dates.Months) is list
    assert dates.Months[0] == ""
    assert dates.Mon2num == imaplib.Mon2num
    for name in ("InternalDate", "Flags", "MapCRLF"):
        ours, theirs = getattr(dates, name), getattr(imaplib, name)
        assert isinstance(ours, re.Pattern)
        assert ours.groupindex == theirs.groupindex
        assert ours.flags == theirs.flags
    for name in dates.__all__:
        assert hasattr(imaplib, name), name


def _match_outcome(pattern: re.Pattern[bytes], data: bytes) -> Any:
    found = pattern.match(data)
    return None if found is None else (found.span(), found.groupdict())


@given(st.one_of(internaldate_responses(), flag_responses, st.binary(max_size=60)))
@example(b'* 1 FETCH (INTERNALDATE "17-Jul-1996 02:44:25 -0700")')
@example(b'INTERNALDATE " 1-Jan-2000 00:00:00 +0000" INTERNALDATE "02-Feb-2001 00:00:00 +0000"')
def test_patterns_match_like_stdlib(data: bytes) -> None:
    for name in ("InternalDate", "Flags"):
        assert _match_outcome(getattr(dates, name), data) == _match_outcome(
            getattr(imaplib, name), data
        )
    assert dates.MapCRLF.sub(b"\r\n", data) == imaplib.MapCRLF.sub(b"\r\n", data)
    assert dates.MapCRLF.split(data) == imaplib.MapCRLF.split(data)


def test_parsers_stay_sans_io() -> None:
    tree = ast.parse(SOURCE.read_text(encoding="utf-8"))
    forbidden = {"socket", "ssl", "select", "subprocess"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert not {alias.name.split(".")[0] for alias in node.names} & forbidden
        elif isinstance(node, ast.ImportFrom):
            assert (node.module or "").split(".")[0] not in forbidden
        elif isinstance(node, ast.Name):
            assert node.id != "print"
        elif isinstance(node, ast.Attribute):
            assert node.attr != "sleep"


# ---------------------------------------------------------------------------------------------
# Int2AP


@given(
    st.one_of(
        st.integers(),
        st.integers(-(2**80), 2**80),
        st.floats(),
        st.booleans(),
        st.builds(Decimal, st.integers()),
        st.builds(Fraction, st.integers(), st.integers(1, 100)),
        st.builds(complex, st.floats(-1e6, 1e6), st.floats(-1e6, 1e6)),
        st.sampled_from(["12", b"12", None, [1], Decimal("NaN"), Decimal("Infinity")]),
    )
)
@example(0)
@example(-1)
@example(15)
@example(16)
@example(-0.0)
@example(65535)
def test_int2ap_matches_stdlib(num: Any) -> None:
    assert outcome(dates.Int2AP, num) == outcome(imaplib.Int2AP, num)


def test_int2ap_known_values() -> None:
    assert dates.Int2AP(0) == b""
    assert dates.Int2AP(-0) == b""
    assert dates.Int2AP(1) == b"B"
    assert dates.Int2AP(-1) == b"B"
    assert dates.Int2AP(4096) == b"BAAA"
    assert dates.Int2AP(65535) == b"PPPP"
    assert dates.Int2AP(3.9) == b"D"


# ---------------------------------------------------------------------------------------------
# ParseFlags (does not depend on the time zone)


@given(flag_responses)
@example(b"1 (FLAGS (\\Seen \\Answered $Label))")
@example(b"1 (UID 4)")
@example(b"FLAGS ()")
@example(b"FLAGS (a) FLAGS (b")
@example(b"1 (FLAGS (\\Seen) FLAGS (\\Draft))")
@example(b"FLAGS (a\nb) FLAGS (c)")
@example(b"x\nFLAGS (a)")
@example(b"FLAGS (a")
@example(b"")
def test_parseflags_matches_stdlib(resp: bytes) -> None:
    for kind in (bytes, bytearray, memoryview):
        data = kind(resp)
        assert outcome(dates.ParseFlags, data) == outcome(imaplib.ParseFlags, data)


@pytest.mark.parametrize("resp", ["FLAGS (\\Seen)", None, 12, ["FLAGS (x)"]])
def test_parseflags_wrong_types_fail_like_stdlib(resp: Any) -> None:
    assert outcome(dates.ParseFlags, resp) == outcome(imaplib.ParseFlags, resp)


def test_parseflags_examples() -> None:
    assert dates.ParseFlags(b"1 (FLAGS (\\Seen \\Answered $Label))") == (
        b"\\Seen",
        b"\\Answered",
        b"$Label",
    )
    assert dates.ParseFlags(b"1 (UID 4)") == ()
    assert dates.ParseFlags(b"1 (FLAGS ())") == ()
    assert dates.ParseFlags(b"garbage ) ( FLAGS") == ()


# ---------------------------------------------------------------------------------------------
# Time zone dependent functions, under every zone


@needs_tzset
@pytest.mark.usefixtures("zone")
class TestUnderTimezones:
    @settings(max_examples=200, deadline=None)
    @given(timestamps)
    def test_time2internaldate_numbers(self, seconds: Any) -> None:
        assert_time2internaldate_same(seconds)

    @settings(deadline=None)
    @given(st.integers(min_value=-(10**11), max_value=10**12), st.booleans())
    def test_time2internaldate_struct_time(self, seconds: int, local: bool) -> None:
        try:
            stamp = time.localtime(seconds) if local else time.gmtime(seconds)
        except (OverflowError, OSError, ValueError):
            return
        assert_time2internaldate_same(stamp)

    @settings(max_examples=300, deadline=None)
    @given(nine_tuples)
    def test_time2internaldate_nine_tuples(self, stamp: tuple[Any, ...]) -> None:
        assert_time2internaldate_same(stamp)
        # The same values as a struct_time made from a sequence (tm_gmtoff is then None).
        assert_time2internaldate_same(time.struct_time(stamp))

    @settings(deadline=None)
    @given(
        nine_tuples,
        st.one_of(st.text(max_size=5), st.none()),
        st.one_of(st.integers(-200000, 200000), st.floats(-90000, 90000), st.none()),
    )
    def test_time2internaldate_struct_time_with_gmtoff(
        self, stamp: tuple[Any, ...], zone_name: Optional[str], gmtoff: Any
    ) -> None:
        assert_time2internaldate_same(time.struct_time((*stamp, zone_name, gmtoff)))

    @settings(deadline=None)
    @given(st.lists(st.integers(0, 50), min_size=0, max_size=12).map(tuple))
    def test_time2internaldate_odd_length_tuples(self, stamp: tuple[int, ...]) -> None:
        assert_time2internaldate_same(stamp)

    @settings(max_examples=200, deadline=None)
    @given(aware_datetimes)
    def test_time2internaldate_aware_datetimes(self, moment: datetime) -> None:
        assert_time2internaldate_same(moment)

    @settings(deadline=None)
    @given(st.datetimes())
    def test_time2internaldate_naive_datetime_refused(self, moment: datetime) -> None:
        assert_time2internaldate_same(moment)
        with pytest.raises(ValueError, match=r"^date_time must be aware$"):
            dates.Time2Internaldate(moment)

    @settings(deadline=None)
    @given(st.one_of(st.text(max_size=8), st.text(max_size=8).map(lambda text: f'"{text}"')))
    @example("")
    @example('"')
    @example('""')
    @example('"17-Jul-1996 02:44:25 -0700"')
    @example("17-Jul-1996 02:44:25 -0700")
    def test_time2internaldate_strings(self, text: str) -> None:
        assert_time2internaldate_same(text)
        if text[:1] == '"' and text[-1:] == '"':
            assert dates.Time2Internaldate(text) is text

    @pytest.mark.parametrize(
        "value",
        [None, b'"x"', bytearray(b'"x"'), date(2020, 1, 1), [2020, 1, 1], object(), Decimal(1),
         Fraction(1, 2), 1j, {"a": 1}],
    )  # fmt: skip
    def test_time2internaldate_unknown_types(self, value: Any) -> None:
        assert_time2internaldate_same(value)

    def test_time2internaldate_special_objects(self) -> None:
        class NoOffset(tzinfo):
            def utcoffset(self, dt: Optional[datetime]) -> Optional[timedelta]:
                return None

        class TooFar(tzinfo):
            def utcoffset(self, dt: Optional[datetime]) -> Optional[timedelta]:
                return timedelta(hours=25)

        class NotADelta(tzinfo):
            def utcoffset(self, dt: Optional[datetime]) -> Any:
                return 3600

        class MyDatetime(datetime):
            pass

        class MyInt(int):
            pass

        class MyFloat(float):
            pass

        class MyStr(str):
            pass

        Stamp = namedtuple("Stamp", "y m d H M S wd yd dst")
        for value in [
            datetime(2020, 6, 1, 12, tzinfo=NoOffset()),
            datetime(2020, 6, 1, 12, tzinfo=TooFar()),
            datetime(2020, 6, 1, 12, tzinfo=NotADelta()),
            MyDatetime(2020, 6, 1, 12, 30, tzinfo=timezone(timedelta(hours=-3))),
            MyInt(10**9),
            MyFloat(1.5e9),
            MyStr('"already quoted"'),
            Stamp(2020, 3, 29, 2, 30, 0, 6, 89, -1),  # a gap in European DST
            Stamp(2020, 10, 25, 2, 30, 0, 6, 299, -1),  # an overlap in European DST
            Stamp(2020, 3, 8, 2, 30, 0, 6, 68, -1),  # a gap in US DST
            (2020, 11, 1, 1, 30, 0, 6, 306, -1),  # an overlap in US DST
            (2020, 11, 1, 1, 30, 0, 6, 306, 0),
            (2020, 11, 1, 1, 30, 0, 6, 306, 1),
            True,
            False,
        ]:
            assert_time2internaldate_same(value)

    def test_time2internaldate_matches_stdlib_now(self) -> None:
        now = time.time()
        local = time.localtime(now)
        for value in (now, int(now), local, time.gmtime(now), tuple(local)):
            assert_time2internaldate_same(value)

    @settings(max_examples=300, deadline=None)
    @given(internaldate_responses())
    @example(b'1 (INTERNALDATE "17-Jul-1996 02:44:25 -0700")')
    @example(b'1 (INTERNALDATE " 7-Jul-1996 02:44:25 +0000")')
    @example(b'1 (INTERNALDATE "00-Jan-0001 00:00:00 +9999")')
    @example(b'1 (INTERNALDATE "39-Dec-9999 99:99:99 -9999")')
    @example(b'INTERNALDATE "01-Feb-2000 00:00:00 +0000" INTERNALDATE "01-Foo-2000 00:00:00 +0000"')
    @example(b'INTERNALDATE "01-Foo-2000 00:00:00 +0000" INTERNALDATE "01-Feb-2000 00:00:0 +0000"')
    @example(
        b'INTERNALDATE "01-Jan-2000 00:00:00 +0000"\nINTERNALDATE "01-Feb-2000 00:00:00 +0000"'
    )
    @example(b'x\nINTERNALDATE "01-Feb-2000 00:00:00 +0000"')
    @example(b'INTERNALDATE "INTERNALDATE "01-Feb-2000 00:00:00 +0000"')
    def test_internaldate2tuple_matches_stdlib(self, resp: bytes) -> None:
        for kind in (bytes, bytearray, memoryview):
            assert_internaldate2tuple_same(kind(resp))

    @given(st.binary(max_size=60))
    def test_internaldate2tuple_random_bytes(self, resp: bytes) -> None:
        assert_internaldate2tuple_same(resp)

    @settings(deadline=None)
    @given(st.integers(min_value=-631152000, max_value=253402128000))  # 1950 to 9999-12-30
    def test_internaldate_round_trip(self, seconds: int) -> None:
        # What Time2Internaldate writes, Internaldate2tuple reads back as the same moment. (Zone
        # offsets with seconds, as before 1950 in some zones, have no INTERNALDATE form.)
        written = dates.Time2Internaldate(seconds)
        resp = b"1 (INTERNALDATE " + written.encode("ascii") + b")"
        assert_internaldate2tuple_same(resp)
        parsed = dates.Internaldate2tuple(resp)
        assert parsed is not None
        assert parsed == time.localtime(seconds)

    @pytest.mark.parametrize("resp", ['INTERNALDATE "17-Jul-1996 02:44:25 -0700"', None, 5])
    def test_internaldate2tuple_wrong_types_fail_like_stdlib(self, resp: Any) -> None:
        assert_internaldate2tuple_same(resp)


# Set from the environment when the interpreter starts (no tzset() call afterwards).
_SUBPROCESS_CHECK = textwrap.dedent(
    """
    import imaplib, sys, time
    from datetime import datetime, timedelta, timezone
    from mailwire._imap import dates
    pad = datetime(5, 1, 1).strftime("%Y") == "0005"
    values = [0, 1e9, 1.7e9 + 0.5, -1e9, time.localtime(1.7e9), time.gmtime(1e9),
              (2021, 7, 1, 12, 0, 0, 3, 182, -1), (2021, 1, 1, 12, 0, 0, 4, 1, 0),
              (2021, 7, 1, 12, 0, 0, 3, 182, 1),
              datetime(2021, 7, 1, 12, tzinfo=timezone(timedelta(hours=-9, minutes=-30)))]
    for value in values:
        assert dates.Time2Internaldate(value) == imaplib.Time2Internaldate(value), value
    for resp in (b'1 (INTERNALDATE "17-Jul-1996 02:44:25 -0700")',
                 b'1 (INTERNALDATE "01-Jan-1970 00:00:00 +0000")',
                 b'1 (INTERNALDATE "31-Mar-2024 02:30:00 +0100")'):
        assert dates.Internaldate2tuple(resp) == imaplib.Internaldate2tuple(resp), resp
    print("ok", time.timezone, time.daylight)
    """
)


@pytest.mark.parametrize("tz", ["Europe/Berlin", "America/New_York", "EST5EDT,M3.2.0,M11.1.0"])
def test_zone_from_environment_at_startup(tz: str) -> None:
    if NAMED_ZONE.fullmatch(tz) and not (ZONEINFO / tz).is_file():
        pytest.skip(f"the tz database has no {tz}")
    env = dict(os.environ, TZ=tz)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(SOURCE.parents[2]), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    done = subprocess.run(
        [sys.executable, "-c", _SUBPROCESS_CHECK],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok ")
    assert done.stdout.split()[1] != "0"


# ---------------------------------------------------------------------------------------------
# The registered deviations


@needs_tzset
class TestDeviations:
    def test_unknown_month_returns_none(self) -> None:
        resp = b'1 (INTERNALDATE "17-Foo-1996 02:44:25 -0700")'
        with pytest.raises(KeyError):
            imaplib.Internaldate2tuple(resp)  # the stdlib crashes on hostile server input
        assert dates.Internaldate2tuple(resp) is None

    def test_year_zero_returns_none(self) -> None:
        resp = b'1 (INTERNALDATE "01-Jan-0000 00:00:00 +0000")'
        with pytest.raises(ValueError, match="year 0 is out of range"):
            imaplib.Internaldate2tuple(resp)
        assert dates.Internaldate2tuple(resp) is None

    @pytest.mark.parametrize("error", [OverflowError, OSError])
    def test_localtime_failure_returns_none(
        self, monkeypatch: pytest.MonkeyPatch, error: type[Exception]
    ) -> None:
        def refuse(seconds: Optional[float] = None) -> time.struct_time:
            raise error("out of range for this platform")

        monkeypatch.setattr(time, "localtime", refuse)
        assert dates.Internaldate2tuple(b'INTERNALDATE "01-Jan-1900 00:00:00 +0000"') is None

    def test_negative_abs_refused_where_stdlib_loops(self) -> None:
        class Odd:
            def __abs__(self) -> int:
                return -5

        with pytest.raises(ValueError, match="non-negative"):
            dates.Int2AP(Odd())  # type: ignore[arg-type]

    def test_short_year_is_zero_padded(self) -> None:
        moment = datetime(999, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
        assert dates.Time2Internaldate(moment) == '"02-Jan-0999 03:04:05 +0000"'
        tiny = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=2)))
        assert dates.Time2Internaldate(tiny) == '"01-Jan-0001 00:00:00 +0200"'


def test_known_values() -> None:
    with local_zone("UTC0"):
        assert dates.Time2Internaldate(0) == '"01-Jan-1970 00:00:00 +0000"'
        parsed = dates.Internaldate2tuple(b'1 (INTERNALDATE "17-Jul-1996 02:44:25 -0700")')
        assert parsed is not None
        assert tuple(parsed)[:6] == (1996, 7, 17, 9, 44, 25)
    offset = timezone(timedelta(hours=5, minutes=30, seconds=1, microseconds=2))
    assert (
        dates.Time2Internaldate(datetime(2020, 2, 29, 23, 59, 59, tzinfo=offset))
        == '"29-Feb-2020 23:59:59 +053001.000002"'
    )
    with pytest.raises(ValueError, match=r"^date_time not of a known type$"):
        dates.Time2Internaldate(None)  # type: ignore[arg-type]
