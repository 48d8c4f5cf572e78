"""The dataset schema: construction, validation and ground truth."""

import json

import numpy as np
import pytest
import xarray as xr

from operando import data
from operando.errors import DataError


def test_image_series_coords_and_metadata():
    ds = data.image_series(np.zeros((3, 4, 5)), times=[0, 1.5, 3], pixel_size=80, pixel_unit="nm")
    assert ds["images"].dims == ("t", "y", "x")
    assert ds["t"].dtype == np.float64 and ds["t"].attrs["units"] == "s"
    np.testing.assert_allclose(ds["x"].values, [0, 80, 160, 240, 320])
    assert ds["x"].attrs["units"] == "nm"
    assert ds.attrs["operando_schema"] == data.SCHEMA
    assert ds.attrs["pixel_size"] == 80.0


def test_energy_stack_requires_energies():
    ds = data.energy_stack(np.ones((2, 3, 3)), energies=[706.0, 713.0])
    assert ds["images"].dims == ("energy", "y", "x")
    assert ds["energy"].attrs["units"] == "eV"
    with pytest.raises(DataError, match="needs its energies"):
        data.energy_stack(np.ones((2, 3, 3)), energies=None)


@pytest.mark.parametrize(("times", "word"), [([0, 2, 1], "unsorted"), ([0, 1, 1], "duplicated")])
def test_bad_times_are_rejected(times, word):
    with pytest.raises(DataError, match=word) as e:
        data.image_series(np.zeros((3, 2, 2)), times=times, source="movie.tif")
    assert "movie.tif" in str(e.value) and "fix:" in str(e.value)


def test_unsorted_energies_rejected():
    with pytest.raises(DataError, match="energy"):
        data.energy_stack(np.zeros((3, 2, 2)), energies=[710.0, 700.0, 720.0])


def test_nan_pixels_rejected_unless_allowed():
    x = np.zeros((2, 3, 3))
    x[1, 1, 1] = np.nan
    x[0, 0, 0] = np.inf
    with pytest.raises(DataError, match="2 NaN/inf"):
        data.make_dataset(x, source="a.npy")
    ds = data.make_dataset(x, allow_nonfinite=True)
    assert np.isnan(ds["images"].values[1, 1, 1])


@pytest.mark.parametrize(
    ("shape", "dims", "match"),
    [
        ((5,), None, "1 dimensions"),
        ((2, 2, 2, 2, 2), None, "5 dimensions"),
        ((2, 3, 3), ("t", "y"), "2 dim names"),
        ((2, 3, 3), ("y", "x", "t"), "must end with"),
        ((2, 3, 3), ("time", "y", "x"), "unknown dims"),
        ((2, 2, 3, 3), ("energy", "t", "y", "x"), "out of order"),
        ((0, 3, 3), None, "empty"),
    ],
)
def test_wrong_shapes_rejected(shape, dims, match):
    with pytest.raises(DataError, match=match):
        data.make_dataset(np.zeros(shape), dims=dims)


def test_complex_and_string_images_rejected():
    with pytest.raises(DataError, match="complex"):
        data.make_dataset(np.zeros((2, 2), complex))
    with pytest.raises(DataError, match="non-numeric"):
        data.make_dataset(np.array([["a", "b"], ["c", "d"]]))


def test_empty_mask_rejected():
    masks = np.zeros((2, 4, 4), bool)
    masks[0, 1, 1] = True
    with pytest.raises(DataError, match=r"particle\(s\) \[1\] are empty"):
        data.make_dataset(np.zeros((4, 4)), masks=masks)
    ds = data.make_dataset(np.zeros((4, 4)), masks=masks[0])
    assert ds["masks"].dims == ("particle", "y", "x")


def test_truth_attach_and_get():
    ds = data.image_series(np.random.default_rng(0).random((2, 4, 4)))
    assert not data.has_truth(ds) and data.get_truth(ds) is None
    c = np.linspace(0.01, 0.99, 9)
    ds2 = data.attach_truth(
        ds,
        clean=ds["images"].values * 0.5,
        functions={"D": (c, 1 - c), "mu_h": (c, np.log(c / (1 - c)))},
        parameters={"kappa": 2e-3, "omega": 3.0},
        seed=7,
    )
    truth = data.get_truth(ds2)
    assert truth is not None and truth.seed == 7
    assert truth.parameters == {"kappa": 2e-3, "omega": 3.0}
    np.testing.assert_array_equal(truth.functions["D"][1], 1 - c)
    np.testing.assert_array_equal(truth.clean.values, ds["images"].values * 0.5)
    with pytest.raises(DataError, match="shape"):
        data.attach_truth(ds, clean=np.zeros((3, 3)))


def test_provenance_appends_with_version():
    import operando

    ds = data.make_dataset(np.zeros((2, 2)))
    ds = data.add_provenance(data.add_provenance(ds, "a", x=1), "b", arr=np.arange(2))
    steps = data.get_provenance(ds)
    assert [s["step"] for s in steps] == ["a", "b"]
    assert steps[0]["operando_version"] == operando.__version__
    assert steps[1]["arr"] == [0, 1]
    json.loads(ds.attrs["provenance"])  # stored as a JSON string


def test_describe_dataset_is_json_serialisable():
    ds = data.attach_truth(data.image_series(np.ones((2, 3, 3))), parameters={"a": 1}, seed=1)
    d = data.describe_dataset(ds)
    json.dumps(d)
    assert d["shape"] == [2, 3, 3] and d["ground_truth"]["seed"] == 1


def test_validate_rejects_non_dataset_and_missing_images():
    with pytest.raises(DataError, match=r"xarray\.Dataset"):
        data.validate_dataset(np.zeros(3))
    with pytest.raises(DataError, match="no 'images'"):
        data.validate_dataset(xr.Dataset({"foo": ("x", np.zeros(3))}))
