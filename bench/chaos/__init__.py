"""Fault injection (issue 13): the production configuration, started in isolation, and
faults applied to it on a seeded schedule while a client workload runs.

The runner's side (this package's cluster, proxy, faults, schedule modules)::

    from bench.chaos.cluster import Cluster
    from bench.chaos.faults import FAULTS, Workload
    from bench.chaos.schedule import Schedule, Timeline, run

    with Cluster(servers=2, presence_timeout=5, presence_tick=1, heartbeat_interval=2) as cluster:
        cluster.ws_urls        # list[str]: ws://127.0.0.1:<port>/ws/ per chat server
        cluster.http_urls      # list[str]: http://127.0.0.1:<port> per chat server
        cluster.database_url   # str: the cluster's own PostgreSQL, direct (for the checker)
        cluster.redis_url      # str: its own Redis, database 0, direct
        cluster.push_receiver  # bench.push_receivers.PushServices: new_subscription(name),
                               #   pushes(target) -> every push received for that address
        cluster.servers        # list[ChatServer]: port, pid, postgres_proxy, redis_proxy, log
        cluster.worker         # CeleryWorker; cluster.postgres, cluster.redis: the services
        cluster.log_tail()     # the end of every process's log
        cluster.wait_healthy() # servers answer, Redis PINGs, PostgreSQL accepts, worker runs
        cluster.worker_consumes()  # a task queued now is run by the worker (bool)
        schedule = Schedule.for_cluster(cluster, seed=1, faults=None, duration=10, gap=10)
        timeline = run(cluster, schedule, workload)  # blocking: run it in a thread
        timeline.events        # [Event(at, wall, kind, fault, target, detail)]
        timeline.windows()     # [(fault, target, start, stop)] in seconds after the start

``Schedule(seed, faults, duration, gap, servers=2)`` is the same without a cluster (the
pause fault then needs a ``duration`` of the presence timeout + a tick + 1 s, or ``run``
refuses). ``workload`` implements ``faults.Workload``: ``reconnect_all()``, called from
the runner's thread. ``FAULTS: dict[str, type[Fault]]`` maps each fault's name to its
class; ``Fault(target, workload).start(cluster)`` / ``.stop(cluster)`` apply one by hand.
The client workload, ledger, checker and report are this package's other modules.
"""
