"""Generate the synthetic molecule sample set of the `drug-property` recipe.

Molecules are enumerated with RDKit from fragments: a ring core (benzene, pyridine, thiophene,
piperidine, indole...) carrying two substituents, optionally joined through a linker (amide, ether,
sulfonamide, methylene...) to a second ring carrying one more. Every molecule gets two targets:

- `lipophilicity` (regression): Crippen logP - 0.01 * TPSA plus Gaussian noise (sd 0.25), missing
  for ~3% of rows;
- `active` (binary): 1 when 0.8 * H-bond donors + 0.5 * aromatic rings - 0.3 * |logP - 2.5| plus noise
  (sd 0.5) is in the top ~35%, missing for ~5% of rows (multi-task rows are masked per target).

Both come from atom-level contributions, so a graph network can learn them from structure alone.
The file is messy on purpose, like a real assay export: three unparsable SMILES, a few molecules that
appear twice (once as a sodium or hydrochloride salt, the same molecule after standardisation), two of
them with conflicting `lipophilicity` values, and an `id` column.

Outputs (in OUT, default `sample_data/drug_property/`):

    molecules.csv        labelled rows: id, smiles, lipophilicity, active
    new_molecules.smi    unlabelled SMILES (one with a syntax error) for `dlkit predict`

Usage::

    python sample_data/make_drug_property.py [--out DIR] [--seed N] [--molecules N]

Needs RDKit (`pip install 'dlkit[chem]'`); the output is deterministic for a given seed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from rdkit import Chem, RDLogger
from rdkit.Chem import Crippen, rdMolDescriptors

DEFAULT_OUT = Path(__file__).resolve().parent / "drug_property"
# Ring cores with two substitution points ({0}, {1}) and a third ({2}) where a linker may join.
CORES = [
    "c1cc({0})ccc1{1}",
    "c1c({0})cc({2})cc1{1}",
    "c1cc({0})ncc1{1}",
    "c1nc({0})ccc1{1}",
    "c1cc({0})sc1{1}",
    "c1cc({0})oc1{1}",
    "C1CC({0})CCN1{1}",
    "C1CN({0})CCN1{1}",
    "c1ccc2c(c1)cc({0})n2{1}",
    "c1cc2cc({0})ccc2cc1{1}",
    "C1CC({0})CC1{1}",
    "c1nc({0})nc({2})c1{1}",
    "C1COCC(N1{0}){1}",
    "c1cc({0})c({2})cc1{1}",
]
SECOND_RINGS = ["c1ccccc1", "c1ccncc1", "c1ccsc1", "C1CCCCC1", "C1CCOCC1", "c1ccc(F)cc1", "c1ccc(Cl)cc1"]
LINKERS = ["C(=O)N", "NC(=O)", "O", "C", "CC", "S(=O)(=O)N", "N", "OC"]
SUBSTITUENTS = [
    "[H]",
    "C",
    "CC",
    "C(C)C",
    "O",
    "OC",
    "N",
    "N(C)C",
    "F",
    "Cl",
    "Br",
    "C(F)(F)F",
    "C#N",
    "C(=O)O",
    "C(=O)N",
    "C(=O)OC",
    "S(=O)(=O)N",
    "[N+](=O)[O-]",
    "CO",
    "CCN",
    "OCC",
    "NC(C)=O",
]
BROKEN = ["c1ccccc1C(=O", "CC(C)(C)(C)(C)C", "c1cccc1N("]  # a syntax error, a valence error, another


def _fill(template: str, parts: list[str]) -> str:
    """Put substituents into a template; '[H]' leaves the position empty (an empty branch is dropped)."""
    text = template.format(*parts)
    return text.replace("([H])", "").replace("[H]", "")


def enumerate_molecules(count: int, rng: np.random.Generator) -> list[str]:
    """`count` distinct canonical SMILES drawn from core x substituents (x linker x second ring)."""
    seen: dict[str, None] = {}
    tries = 0
    while len(seen) < count and tries < count * 20:
        tries += 1
        core = CORES[rng.integers(len(CORES))]
        subs = [SUBSTITUENTS[rng.integers(len(SUBSTITUENTS))] for _ in range(2)]
        if rng.random() < 0.55:  # a linker to a second ring at the first position
            ring = SECOND_RINGS[rng.integers(len(SECOND_RINGS))]
            linker = LINKERS[rng.integers(len(LINKERS))]
            subs[0] = linker + ring.replace("1", "3")  # ring-closure digit unused by any core
        third = SUBSTITUENTS[rng.integers(len(SUBSTITUENTS))]
        mol = Chem.MolFromSmiles(_fill(core, [*subs, third]))
        if mol is None or mol.GetNumHeavyAtoms() > 40:
            continue
        seen.setdefault(Chem.MolToSmiles(mol), None)
    return list(seen)


def targets(smiles: list[str], rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for s in smiles:
        mol = Chem.MolFromSmiles(s)
        logp, tpsa = Crippen.MolLogP(mol), rdMolDescriptors.CalcTPSA(mol)
        donors = rdMolDescriptors.CalcNumHBD(mol)
        aromatic = rdMolDescriptors.CalcNumAromaticRings(mol)
        rows.append((logp - 0.01 * tpsa, 0.8 * donors + 0.5 * aromatic - 0.3 * abs(logp - 2.5)))
    lipo, act = map(np.array, zip(*rows, strict=True))
    lipo = lipo + rng.normal(0, 0.25, len(lipo))
    act = act + rng.normal(0, 0.5, len(act))
    active = (act > np.quantile(act, 0.65)).astype(float)
    lipo[rng.random(len(lipo)) < 0.03] = np.nan
    active[rng.random(len(active)) < 0.05] = np.nan
    return pd.DataFrame({"smiles": smiles, "lipophilicity": np.round(lipo, 3), "active": active})


def messy(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Salt-form duplicates (two with conflicting values) and unparsable SMILES, at fixed places."""
    picks = rng.choice(len(frame), size=6, replace=False)
    extra = []
    for k, i in enumerate(picks):
        row = frame.iloc[i].copy()
        salt = ".[Na+].[Cl-]" if k % 2 else ".Cl"
        row["smiles"] = row["smiles"] + salt
        if k < 2:  # a re-measured value that disagrees
            row["lipophilicity"] = round(float(row["lipophilicity"]) + 1.5, 3)
        extra.append(row)
    broken = pd.DataFrame({"smiles": BROKEN, "lipophilicity": [1.0, 2.0, 0.5], "active": [0.0, 1.0, 0.0]})
    out = pd.concat([frame, pd.DataFrame(extra), broken], ignore_index=True)
    out = out.iloc[rng.permutation(len(out))].reset_index(drop=True)
    out.insert(0, "id", [f"MOL{i:05d}" for i in range(len(out))])
    out["active"] = out["active"].astype("Int64")
    return out


def generate(out: Path, seed: int = 0, molecules: int = 1500) -> dict:
    """Write molecules.csv and new_molecules.smi into `out`; returns their row counts."""
    RDLogger.DisableLog("rdApp.*")
    rng = np.random.default_rng(seed)
    smiles = enumerate_molecules(molecules + 40, rng)
    frame = messy(targets(smiles[:molecules], rng), rng)
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / "molecules.csv", index=False)
    new = [*smiles[molecules:], "CC(=O)Oc1ccccc1C(=O)O", "CN1CCC[C@H]1c1cccnc1", "c1ccccc1C(=O"]
    names = [f"NEW{i:03d}" for i in range(len(new))]
    (out / "new_molecules.smi").write_text("".join(f"{s} {n}\n" for s, n in zip(new, names, strict=True)))
    return {"molecules.csv": len(frame), "new_molecules.smi": len(new)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--molecules", type=int, default=1500)
    args = parser.parse_args()
    for name, rows in generate(args.out, args.seed, args.molecules).items():
        print(f"wrote {rows} rows to {args.out / name}")


if __name__ == "__main__":
    main()
