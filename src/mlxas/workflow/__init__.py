"""The workflow contract: one owner of the config, its checks, the results layout and
each stage's settings.

- :mod:`mlxas.workflow.config`: reading and layering a config (schema defaults, then
  the experiment file; ``config/config.yaml`` is selected when no file is given);
- :mod:`mlxas.workflow.checks`: every validation, cross-field checks included, used by
  both ``mlxas config check`` and the Snakefile;
- :mod:`mlxas.workflow.experiment`: :class:`~mlxas.workflow.experiment.Experiment`, the
  checked config with each stage's typed settings and rule parameters;
- :mod:`mlxas.workflow.layout`: every path under ``results/<experiment>/``.

This file imports nothing on purpose: stages import :mod:`mlxas.workflow.layout`, and
:func:`mlxas.provenance.code_version` of a stage follows every import it sees.
"""
