"""cxpulse side by side with Bytewax, Quix Streams, stock Faust and a raw aiokafka loop.

``run`` drives a run (``python -m benchmarks.peers``, ``cxpulse bench --peers``),
``workload`` makes the answer topic and its independent count, ``report`` verifies
and tabulates, ``venvs`` gives each peer its own virtualenv, ``scale`` runs 1, 2, 4…
workers. The peer programs (``raw_loop.py``, ``bytewax_flow.py``, ``quix_app.py``,
``faust_app.py``, with ``peerlib.py``) are scripts run in their own interpreters.
"""
