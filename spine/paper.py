"""The study's reported tables (Silveira et al., 2025), kept as package data with their source."""

from importlib import resources

import pandas as pd

TABLES = {
    "loss": "table2_loss_study.csv",
    "ablation": "table3_ablation.csv",
    "attention": "table4_attention.csv",
    "augmentation": "table5_augmentation.csv",
    "comparison": "table6_comparison.csv",
    "stability": "table7_stability.csv",
    "complexity": "table8_complexity.csv",
    "multiclass": "table9_multiclass.csv",
}


def table(name: str) -> pd.DataFrame:
    """One of the study's tables by short name (``"loss"``, ``"complexity"``, ...) as a DataFrame."""
    if name not in TABLES:
        from spine.errors import ConfigError

        raise ConfigError(f"unknown study table {name!r}; valid: {', '.join(TABLES)}")
    with resources.files("spine.paper_tables").joinpath(TABLES[name]).open() as handle:
        return pd.read_csv(handle)
