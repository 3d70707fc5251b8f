"""Make the finance-forecasting sample data: synthetic daily prices of a few tickers, deterministically.

Each ticker's close is a trend, a day-of-week pattern, a yearly cycle, a slow random walk and
AR(1) noise; a volume column moves with the size of price changes. Some days are missing (a few
percent at random plus one outage of several days per ticker), as in real exports.

    python sample_data/make_finance_forecasting.py    # writes sample_data/finance_forecasting/prices.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

TICKERS = ("ACME", "BOLT", "CRUX", "DYNA")
WEEKLY = np.array([0.0, 0.8, 1.5, 1.0, -0.3, -1.5, -1.5])  # Monday..Sunday, in price units per 100


def ticker_prices(dates: pd.DatetimeIndex, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(close, volume) for one ticker on every date."""
    n = len(dates)
    base = rng.uniform(40, 160)
    t = np.arange(n) / 365.25
    trend = base * (1 + rng.uniform(-0.05, 0.15) * t)
    weekly = base / 100 * rng.uniform(0.8, 1.3) * WEEKLY[dates.day_of_week]
    yearly = base / 100 * rng.uniform(4, 7) * np.sin(2 * np.pi * (dates.day_of_year / 365.25 + rng.uniform()))
    walk = np.cumsum(rng.normal(0, base / 100 * 0.12, n))
    noise = np.zeros(n)
    shocks = rng.normal(0, base / 100 * 0.6, n)
    for i in range(1, n):
        noise[i] = 0.8 * noise[i - 1] + shocks[i]
    close = trend + weekly + yearly + walk + noise
    moves = np.abs(np.r_[0.0, np.diff(close)]) / (base / 100)
    volume = np.round(1e5 * rng.uniform(0.5, 2.0) * (1 + 0.5 * moves) * rng.lognormal(0, 0.2, n))
    return np.round(close, 2), volume


def generate(out: Path, seed: int = 0, start: str = "2021-01-01", end: str = "2023-12-31") -> Path:
    rng = np.random.default_rng(seed)
    dates = pd.date_range(start, end, freq="D")
    frames = []
    for ticker in TICKERS:
        close, volume = ticker_prices(dates, rng)
        keep = rng.uniform(size=len(dates)) > 0.03
        outage = int(rng.integers(60, len(dates) - 60))
        keep[outage : outage + int(rng.integers(4, 8))] = False
        frames.append(
            pd.DataFrame(
                {
                    "date": dates[keep].strftime("%Y-%m-%d"),
                    "ticker": ticker,
                    "close": close[keep],
                    "volume": volume[keep].astype(int),
                }
            )
        )
    out.mkdir(parents=True, exist_ok=True)
    path = out / "prices.csv"
    pd.concat(frames).to_csv(path, index=False)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "finance_forecasting")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    path = generate(args.out, args.seed)
    print(f"wrote {path} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
