"""Mutation testing for agent test suites: would the suite notice if this line were wrong?

``evalkit mutate`` generates mutants of the agent's Python code with cosmic-ray
(:mod:`evalkit.quality.mutation.mutants` says why cosmic-ray), plays the suite against each mutant in
its own worker process and reports the mutation score per module, per judge and per
scenario; ``--prompt`` mutates an LLM agent's system prompt instead
(:mod:`evalkit.quality.mutation.prompt`).
"""

from evalkit.quality.mutation.mutants import (
    CORE_OPERATORS,
    Mutant,
    MutantFinder,
    Target,
    generate_mutants,
    resolve_target,
)
from evalkit.quality.mutation.results import (
    EQUIVALENTS_FILE,
    Equivalent,
    EquivalentsFile,
    KillingVerdict,
    ModuleScore,
    MutantResult,
    MutantStatus,
    MutationReport,
    load_equivalents,
)
from evalkit.quality.mutation.run import (
    DEFAULT_CACHE,
    MUTATION_JSON,
    MutateConfig,
    hint_for,
    run_mutation,
    write_report,
)

__all__ = [
    "CORE_OPERATORS",
    "DEFAULT_CACHE",
    "EQUIVALENTS_FILE",
    "MUTATION_JSON",
    "Equivalent",
    "EquivalentsFile",
    "KillingVerdict",
    "ModuleScore",
    "Mutant",
    "MutantFinder",
    "MutantResult",
    "MutantStatus",
    "MutateConfig",
    "MutationReport",
    "Target",
    "generate_mutants",
    "hint_for",
    "load_equivalents",
    "resolve_target",
    "run_mutation",
    "write_report",
]
