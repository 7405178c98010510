# Types for Cython compiling floor_loop.py as C (benchmarks.floor); Python ignores this file.
cimport cython

@cython.locals(
    seen=dict, responses=dict, wake=dict, counts=dict, label_tuples=dict, pending=dict,
    changed=dict, events=list, acc=list, keys=list, labels=tuple, new=cython.bint,
    ts=cython.longlong, start=cython.longlong, at=cython.longlong, step=cython.longlong,
    score=cython.longlong, slot=cython.Py_ssize_t, seq=cython.longlong, kept=cython.longlong,
)
cpdef tuple count_answers(list batches, long long horizon_ms)
