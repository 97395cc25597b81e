"""Load scenarios: each module is a locustfile (``locust -f loadtests/full_chain.py``)."""
