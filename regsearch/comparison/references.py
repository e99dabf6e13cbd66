"""The literature behind each statistical method regsearch uses: one place that the report,
the suite's page and the docs cite from.

Example:
    >>> cite("holm")[:44]
    'Holm, S. (1979). A simple sequentially rejec'
"""

from __future__ import annotations

__all__ = ["REFERENCES", "cite", "method_keys"]

#: Method key → full reference.
REFERENCES = {
    "corrected t": "Nadeau, C., & Bengio, Y. (2003). Inference for the generalization error. "
    "Machine Learning, 52(3), 239-281.",
    "paired t": "Student (1908). The probable error of a mean. Biometrika, 6(1), 1-25.",
    "max-t": "Westfall, P. H., & Young, S. S. (1993). Resampling-Based Multiple Testing. "
    "Wiley. (Step-down max-t; many-to-one as in Dunnett, C. W. (1955), JASA 50(272), "
    "1096-1121.)",
    "holm": "Holm, S. (1979). A simple sequentially rejective multiple test procedure. "
    "Scandinavian Journal of Statistics, 6(2), 65-70.",
    "bayesian": "Corani, G., & Benavoli, A. (2015). A Bayesian approach for comparing "
    "cross-validated algorithms on multiple data sets. Machine Learning, 100(2), 285-304; "
    "Benavoli, A., Corani, G., Demšar, J., & Zaffalon, M. (2017). Time for a change: a tutorial "
    "for comparing multiple classifiers through Bayesian analysis. JMLR, 18(77), 1-36.",
    "trimmed": "Yuen, K. K. (1974). The two-sample trimmed t for unequal population variances. "
    "Biometrika, 61(1), 165-170.",
    "wilcoxon": "Wilcoxon, F. (1945). Individual comparisons by ranking methods. Biometrics "
    "Bulletin, 1(6), 80-83.",
    "friedman": "Friedman, M. (1937). The use of ranks to avoid the assumption of normality "
    "implicit in the analysis of variance. JASA, 32(200), 675-701.",
    "nemenyi": "Demšar, J. (2006). Statistical comparisons of classifiers over multiple data "
    "sets. JMLR, 7, 1-30. (Nemenyi critical difference, after Nemenyi, P. (1963), "
    "Distribution-free multiple comparisons, PhD thesis, Princeton.)",
}


def cite(key: str) -> str:
    """The full reference of a method key of :data:`REFERENCES`."""
    return REFERENCES[key]


def method_keys(method: str, adjustment: str, rule_name: str) -> list[str]:
    """The keys of the methods behind one sweep's comparison: its test (``Comparison.method``),
    its multiplicity adjustment and its decision rule.

    Example:
        >>> method_keys("corrected resampled t", "max-t", "graded, P≥0.8")
        ['corrected t', 'max-t', 'bayesian']
    """
    keys = ["corrected t" if "corrected" in method else "paired t"]
    keys.append("holm" if adjustment == "holm" else "max-t")
    if "graded" in rule_name or "P≥" in rule_name:
        keys.append("bayesian")
    if "trim" in rule_name:
        keys.append("trimmed")
    return keys
