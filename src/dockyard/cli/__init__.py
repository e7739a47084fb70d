"""``dockyard``: the command line (click), a drop-in for the docker CLI's container and image
verbs that talks to the daemon only through ``dockyard.client``.

Modules: ``main`` (entry point, lazy command table, docker-style usage errors), ``containers``
(run/create/start/stop/kill/restart/rm/ps/logs/wait/prune), ``interactive`` (exec, attach),
``images`` (images/pull/load/save/tag/rmi), ``registry`` (login/logout/push and the
credentials pulls send), ``system`` (version/info/inspect), and the pure
helpers ``createopts`` (flags → create body), ``formatting`` (tables, units, contexts),
``gotemplate`` (Go templates for ``--format``), ``progress`` (pull/load progress),
``streaming`` (terminal ↔ hijacked stream).
"""
