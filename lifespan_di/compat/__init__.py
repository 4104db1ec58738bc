"""Where lifespan_di meets other projects' private or legacy interfaces.

- ``dependency_injector``: the parts of dependency-injector used without a
  documented API;
- ``django``: the parts of Django used without a documented API;
- ``django_asgi_lifespan``: the interface of django-asgi-lifespan (signals, lifespan
  managers, type aliases) that a migrating project keeps using.

Every private API is listed in docs/how-it-works.md ("What lifespan_di relies on")
and pinned by a test in ``tests/test_upstream.py``.
"""
