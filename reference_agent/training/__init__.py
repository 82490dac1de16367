"""Training code for the reference agent's router (needs the ``train`` extra: scikit-learn).

Nothing here is imported at run time: the agent loads the JSON artifact this code writes
(``reference_agent/data/router.json``) with :mod:`reference_agent.router`.
"""
