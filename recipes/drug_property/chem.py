"""Everything that touches RDKit: parsing and standardising molecules, Bemis-Murcko scaffolds, Morgan
fingerprints, atom and bond features for the graph network, and reading SDF files.

RDKit is the `chem` extra: it is imported here only, through `rdkit()`, so `dlkit recipes` and
`dlkit --help` work without it and every command that needs it stops with the line that installs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from dlkit.errors import UserError
from dlkit.extras import require

# One-hot vocabularies of the atom features; the last slot of each takes everything else.
ELEMENTS = ("C", "N", "O", "F", "P", "S", "Cl", "Br", "I", "B", "Si", "Se")
DEGREES = (0, 1, 2, 3, 4, 5)
CHARGES = (-1, 0, 1)
HYDROGENS = (0, 1, 2, 3, 4)
HYBRIDISATIONS = ("SP", "SP2", "SP3", "SP3D", "SP3D2")
BOND_TYPES = ("SINGLE", "DOUBLE", "TRIPLE", "AROMATIC")
ATOM_DIM = sum(len(v) + 1 for v in (ELEMENTS, DEGREES, CHARGES, HYDROGENS, HYBRIDISATIONS)) + 2
BOND_DIM = len(BOND_TYPES) + 2


@cache
def rdkit():
    """The RDKit modules this recipe uses (Chem, rdMolStandardize, MurckoScaffold, fingerprints), quiet."""
    chem = require("rdkit.Chem", "chem")
    from rdkit import RDLogger
    from rdkit.Chem import rdFingerprintGenerator
    from rdkit.Chem.MolStandardize import rdMolStandardize
    from rdkit.Chem.Scaffolds import MurckoScaffold

    RDLogger.DisableLog("rdApp.*")  # parse errors are reported per row by us, not printed by RDKit
    return chem, rdMolStandardize, MurckoScaffold, rdFingerprintGenerator


@dataclass
class Parsed:
    """A standardised molecule (`mol`, `smiles` canonical) or why the input is not one (`error`)."""

    mol: object | None
    smiles: str
    error: str = ""


def standardise(text: str) -> Parsed:
    """Parse a SMILES and standardise it: keep the largest fragment (drops salts and solvents),
    neutralise charges where a neutral form exists, write canonical SMILES. Never raises."""
    chem, std, _, _ = rdkit()
    text = str(text).strip() if text is not None else ""
    if not text:
        return Parsed(None, "", "empty SMILES")
    mol = chem.MolFromSmiles(text, sanitize=False)
    if mol is None:
        return Parsed(None, "", "invalid SMILES (syntax)")
    return from_mol(mol)


def from_mol(mol) -> Parsed:
    """Sanitise and standardise an RDKit molecule (from SMILES or an SDF record)."""
    chem, std, _, _ = rdkit()
    try:
        chem.SanitizeMol(mol)
        mol = chem.RemoveHs(mol)  # SDF files often carry explicit hydrogens; SMILES usually do not
        mol = std.LargestFragmentChooser().choose(mol)
        mol = std.Uncharger().uncharge(mol)
        chem.SanitizeMol(mol)
    except Exception as exc:  # RDKit raises its own types (valence, kekulisation): all mean "not a molecule"
        return Parsed(None, "", f"invalid molecule ({str(exc).strip().splitlines()[0]})")
    if mol.GetNumAtoms() == 0:
        return Parsed(None, "", "no atoms")
    return Parsed(mol, chem.MolToSmiles(mol))


def scaffold(mol) -> str:
    """The Bemis-Murcko scaffold (ring systems and the linkers between them) as SMILES; '' when acyclic."""
    _, _, murcko, _ = rdkit()
    return murcko.MurckoScaffoldSmiles(mol=mol, includeChirality=False)


def fingerprints(mols: list, radius: int, bits: int) -> np.ndarray:
    """Morgan (ECFP-like) bit vectors, one row of 0/1 per molecule (uint8)."""
    _, _, _, gen = rdkit()
    generator = gen.GetMorganGenerator(radius=radius, fpSize=bits)
    out = np.zeros((len(mols), bits), dtype=np.uint8)
    for i, mol in enumerate(mols):
        out[i] = generator.GetFingerprintAsNumPy(mol)
    return out


def _one_hot(value, choices: tuple) -> list[float]:
    hot = [0.0] * (len(choices) + 1)
    hot[choices.index(value) if value in choices else len(choices)] = 1.0
    return hot


def graph(mol) -> dict[str, np.ndarray]:
    """Atom features [atoms, ATOM_DIM], directed edges [2, 2*bonds] and their features [2*bonds, BOND_DIM]."""
    atoms = [
        _one_hot(a.GetSymbol(), ELEMENTS)
        + _one_hot(a.GetDegree(), DEGREES)
        + _one_hot(a.GetFormalCharge(), CHARGES)
        + _one_hot(a.GetTotalNumHs(), HYDROGENS)
        + _one_hot(str(a.GetHybridization()), HYBRIDISATIONS)
        + [float(a.GetIsAromatic()), float(a.IsInRing())]
        for a in mol.GetAtoms()
    ]
    edges, features = [], []
    for b in mol.GetBonds():
        i, j = b.GetBeginAtomIdx(), b.GetEndAtomIdx()
        f = _one_hot(str(b.GetBondType()), BOND_TYPES)[:-1] + [
            float(b.GetIsConjugated()),
            float(b.IsInRing()),
        ]
        edges += [(i, j), (j, i)]
        features += [f, f]
    return {
        "atoms": np.asarray(atoms, dtype=np.float32).reshape(-1, ATOM_DIM),
        "edges": np.asarray(edges, dtype=np.int64).reshape(-1, 2).T.copy(),
        "bonds": np.asarray(features, dtype=np.float32).reshape(-1, BOND_DIM),
    }


def read_sdf(path: Path) -> tuple[list, list[dict]]:
    """(molecules or None per record, each record's properties). A record RDKit cannot read is None."""
    chem = rdkit()[0]
    if not path.is_file():
        raise UserError(f"file '{path}' does not exist")
    supplier = chem.SDMolSupplier(str(path), sanitize=False, removeHs=False)
    mols, props = [], []
    for mol in supplier:
        mols.append(mol)
        props.append(
            mol.GetPropsAsDict(includePrivate=False, includeComputed=False) if mol is not None else {}
        )
    if not mols:
        raise UserError(f"SDF file '{path}' holds no molecule", "give an SDF with at least one record")
    return mols, props
