"""The lifecycle core: start and stop a container's resources, with no request in sight.

Nothing here imports Django's request machinery or the request scope (a test checks
the import graph):

- ``graph``: the resources, their names and dependencies, the order and waves;
- ``forms``: which form a resource has, and how each form opens and closes;
- ``engine``: start in dependency order, concurrently, with rollback; publish the state;
- ``shutdown``: stop in reverse dependency order, every teardown attempted and bounded;
- ``report``: what happened to each resource, and the errors that say so;
- ``lifespan``: ``ContainerLifespan`` and the one answer to "which lifespan runs
  here?";
- ``class_level``: while a lifespan runs, the container class's providers answer
  from the running instance;
- ``runtime``: the process's record of running lifespans, emptied in a fork child;
- ``shared``: one lifespan per container shared by the blocks that need it, counted;
- ``loop``: an event loop on a private thread, for sync code that owns resources.
"""
