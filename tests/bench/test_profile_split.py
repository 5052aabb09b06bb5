"""Reading a py-spy profile by the kind of code its samples ran (``bench.profile_split``)."""

from bench.profile_split import PYTHON, kind_of, report, split

LOOP = ("_run_module_as_main (<frozen runpy>:198);main (agents/cli.py:51);"
        "Handle._run (asyncio/events.py:80);MemberProcessor.apply (agents/member_agent.py:240)")

PROFILE = [
    f"{LOOP} 50\n",
    f"{LOOP};CPyPy_apply___apply (__native_native.c);CPyDef_apply___apply (__native_native.c) 20\n",
    f"{LOOP};CPyDef_apply___apply (__native_native.c);Py_DECREF (object.h) 5\n",
    f"{LOOP};loads (orjson/orjson.cpython-311-x86_64-linux-gnu.so) 10\n",
    f"{LOOP};rocksdb::crc32c::Extend (rocksdict/rocksdict.cpython-311-x86_64-linux-gnu.so) 5\n",
    f"{LOOP};gc_collect_main (libpython3.11.so.1.0) 4\n",
    f"{LOOP};write (libc.so.6) 6\n",
    "\n",
]


def test_samples_are_summed_by_what_their_innermost_frame_runs():
    samples = split(PROFILE)

    assert samples == {PYTHON: 50, "compiled engine (mypyc)": 25, "orjson": 10,
                       "RocksDB (rocksdict)": 5, "garbage collector": 4,
                       "C library (malloc, memcpy, system calls)": 6}


def test_a_python_frame_is_told_from_a_native_one():
    assert kind_of("MemberProcessor.apply (agents/member_agent.py:240)") == PYTHON
    assert kind_of("<lambda> (<string>:1)") == PYTHON
    assert kind_of("datetime_fromtimestamp (_datetimemodule.c)") == "CPython runtime in C"
    assert kind_of("0x7f1d768b5d70 (libc.so.6)") == "C library (malloc, memcpy, system calls)"


def test_the_report_bounds_what_removing_python_could_gain():
    text = report(split(PROFILE))

    assert "Python bytecode" in text and "50.0%" in text
    assert "without any Python bytecode the rest would run 2.00x as fast" in text
