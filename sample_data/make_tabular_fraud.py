"""Generate the synthetic card-transaction sample set of the `tabular-fraud` recipe.

Each row is one card payment: when, how much, where (merchant, its category, the country), how
(device, online or not), and what we know of the account (age, recent activity). About 1.5% of
rows are fraud. The fraud signal is learnable but not trivial: most of it lives in interactions
that a linear model over one-hot and scaled columns cannot express:

- a new account (< 30 days) paying online;
- a card used abroad (card country != transaction country) at night (00:00-05:59);
- a large amount (> 400) in a resale-friendly category (electronics, jewellery, gift cards);
- small, rarely seen merchants (visible through frequency encoding of `merchant_id`);
- many transactions in the last 24 h, a long way from home, crypto exchanges.

The file is messy on purpose, like real exports: missing values (amount, device, account age),
data-entry outliers (amounts x1000, absurd distances), ~1% exact duplicate rows (double ingestion),
a few duplicates whose label disagrees, an id column and a constant column.

Outputs (in OUT, default `sample_data/tabular_fraud/`):

    transactions.csv       labelled rows (label column `is_fraud`, 0/1)
    new_transactions.csv   unlabelled rows drawn the same way, for `dlkit predict`

Usage::

    python sample_data/make_tabular_fraud.py [--out DIR] [--seed N] [--rows N] [--new-rows N] [--prevalence P]

Only numpy and pandas are needed; the output is deterministic for a given seed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_OUT = Path(__file__).resolve().parent / "tabular_fraud"
PREVALENCE = 0.015
CATEGORIES = {  # name: (share of transactions, median amount)
    "grocery": (0.22, 35),
    "restaurant": (0.15, 28),
    "fuel": (0.10, 55),
    "clothing": (0.09, 70),
    "pharmacy": (0.07, 22),
    "entertainment": (0.07, 40),
    "online_services": (0.09, 15),
    "travel": (0.06, 320),
    "electronics": (0.07, 180),
    "jewelry": (0.03, 260),
    "gift_cards": (0.035, 60),
    "crypto_exchange": (0.005, 400),
}
RESALE = ("electronics", "jewelry", "gift_cards")
COUNTRIES = [
    "DE",
    "FR",
    "NL",
    "ES",
    "IT",
    "BE",
    "AT",
    "PL",
    "SE",
    "GB",
    "US",
    "CH",
    "PT",
    "IE",
    "DK",
    "BR",
    "NG",
    "TH",
]
HOME_SHARE = [
    0.30,
    0.15,
    0.10,
    0.10,
    0.09,
    0.06,
    0.05,
    0.04,
    0.03,
    0.03,
    0.02,
    0.01,
    0.01,
    0.005,
    0.005,
    0.004,
    0.003,
    0.003,
]
DEVICES = ["mobile", "desktop", "tablet", "pos_terminal"]
N_MERCHANTS = 600


def _draw(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Clean transactions and their fraud probability (column `_p`)."""
    names = list(CATEGORIES)
    shares = np.array([CATEGORIES[c][0] for c in names])
    category = rng.choice(names, size=n, p=shares / shares.sum())
    median = np.array([CATEGORIES[c][1] for c in category], dtype=float)
    amount = np.round(median * rng.lognormal(0.0, 0.9, n), 2)

    popularity = 1.0 / np.arange(1, N_MERCHANTS + 1) ** 1.1  # Zipf: a few big merchants, a long tail
    merchant_rank = rng.choice(N_MERCHANTS, size=n, p=popularity / popularity.sum())
    merchant = np.array([f"M{r:04d}" for r in merchant_rank])

    home = np.array(HOME_SHARE) / np.sum(HOME_SHARE)
    card_country = rng.choice(COUNTRIES, size=n, p=home)
    abroad = rng.random(n) < 0.12
    country = np.where(abroad, rng.choice(COUNTRIES, size=n, p=home), card_country)

    online = rng.random(n) < np.where(
        np.isin(category, ("online_services", "gift_cards", "electronics")), 0.8, 0.3
    )
    device = np.where(online, rng.choice(DEVICES[:3], size=n, p=[0.6, 0.3, 0.1]), "pos_terminal")
    account_age = np.round(rng.gamma(1.2, 500.0, n)).astype(int)
    tx_24h = rng.poisson(1.8, n)
    distance = np.round(rng.lognormal(2.0, 1.3, n), 1)

    start = np.datetime64("2024-01-01T00:00:00")
    day = rng.integers(0, 182, n)
    hour = np.clip(np.round(rng.normal(14, 4.5, n)), 0, 23).astype(int) % 24
    seconds = day * 86400 + hour * 3600 + rng.integers(0, 3600, n)
    timestamp = np.char.replace((start + seconds.astype("timedelta64[s]")).astype(str), "T", " ")

    logit = (
        6.5 * (online & (account_age < 30))
        + 6.5 * ((country != card_country) & (hour < 6))
        + 6.0 * (np.isin(category, RESALE) & (amount > 400))
        + 1.5 * (merchant_rank >= 250)
        + 1.5 * (tx_24h >= 6)
        + 1.0 * (distance > 300)
        + 3.0 * (category == "crypto_exchange")
        + 0.5 * (country != card_country)
        - 1.0 * (device == "pos_terminal")
    )
    frame = pd.DataFrame(
        {
            "timestamp": timestamp,
            "amount": amount,
            "merchant_category": category,
            "merchant_id": merchant,
            "country": country,
            "card_country": card_country,
            "device": device,
            "is_online": np.where(online, "yes", "no"),
            "account_age_days": account_age,
            "tx_last_24h": tx_24h,
            "distance_from_home_km": distance,
            "currency": "EUR",
        }
    )
    frame["_logit"] = logit
    return frame


def _label(rng: np.random.Generator, logit: np.ndarray, prevalence: float) -> np.ndarray:
    """Fraud draws with an intercept found by bisection so the expected fraud rate is `prevalence`."""
    lo, hi = -20.0, 5.0
    for _ in range(60):
        mid = (lo + hi) / 2
        rate = np.mean(1 / (1 + np.exp(-(logit + mid))))
        lo, hi = (mid, hi) if rate < prevalence else (lo, mid)
    return (rng.random(len(logit)) < 1 / (1 + np.exp(-(logit + lo)))).astype(int)


def _make_messy(rng: np.random.Generator, frame: pd.DataFrame) -> pd.DataFrame:
    """Missing values, outliers, exact duplicates and duplicates with a conflicting label."""
    n = len(frame)
    frame["amount"] = frame["amount"].mask(rng.random(n) < 0.01)
    device_missing = rng.random(n) < np.where(
        frame["is_fraud"] == 1, 0.10, 0.03
    )  # missingness is informative
    frame["device"] = frame["device"].mask(device_missing)
    frame["account_age_days"] = frame["account_age_days"].astype("Int64").mask(rng.random(n) < 0.02)
    typo = rng.random(n) < 0.003  # cents entered as whole units
    frame.loc[typo, "amount"] = frame.loc[typo, "amount"] * 1000
    frame.loc[rng.random(n) < 0.002, "distance_from_home_km"] = 99999.0
    repeated = frame.iloc[rng.choice(n, size=n // 100, replace=False)]
    flipped = frame.iloc[rng.choice(n, size=6, replace=False)].copy()
    flipped["is_fraud"] = 1 - flipped["is_fraud"]
    frame = pd.concat([frame, repeated, flipped])
    return frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)


def generate(
    out: Path, seed: int = 0, rows: int = 20000, new_rows: int = 500, prevalence: float = PREVALENCE
) -> dict[str, Path]:
    rng = np.random.default_rng(seed)
    frame = _draw(rng, rows + new_rows)
    frame["is_fraud"] = _label(rng, frame.pop("_logit").to_numpy(), prevalence)
    frame.insert(0, "transaction_id", [f"T{i:07d}" for i in range(1, len(frame) + 1)])
    labelled = _make_messy(rng, frame.iloc[:rows].copy())
    unlabelled = frame.iloc[rows:].drop(columns="is_fraud")
    out.mkdir(parents=True, exist_ok=True)
    paths = {"transactions": out / "transactions.csv", "new_transactions": out / "new_transactions.csv"}
    labelled.to_csv(paths["transactions"], index=False)
    unlabelled.to_csv(paths["new_transactions"], index=False)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rows", type=int, default=20000, help="labelled transactions before duplicates")
    parser.add_argument("--new-rows", type=int, default=500, help="unlabelled transactions for predict")
    parser.add_argument("--prevalence", type=float, default=PREVALENCE, help="expected share of fraud")
    args = parser.parse_args()
    for name, path in generate(args.out, args.seed, args.rows, args.new_rows, args.prevalence).items():
        print(f"{name}: {path} ({path.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
