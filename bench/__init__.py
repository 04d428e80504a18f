"""The benchmark: a load generator, two calibration targets and a report writer.

``python -m bench run <workload>`` starts the servers itself (the chat server on the
embedded or production configuration, and the calibration targets: the plain-websockets
relay and the Django Channels tutorial),
creates users and conversations through the REST API, drives real WebSocket clients from
several processes and writes a Markdown report with plots to ``bench/results/``. See
docs/performance.md.
"""
