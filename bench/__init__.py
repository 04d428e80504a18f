"""The benchmark: a load generator, a calibration relay and a report writer.

``python -m bench run <workload>`` starts the servers itself (the chat server on the
embedded or production configuration, and the plain-websockets calibration relay),
creates users and conversations through the REST API, drives real WebSocket clients from
several processes and writes a Markdown report with plots to ``bench/results/``. See
docs/performance.md.
"""
