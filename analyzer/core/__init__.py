"""Numerical cores of the analyzer: binning, compiled counting kernels, estimators, nulls,
concentration metrics and interval statistics. numpy/numba/scipy only: no store, no xarray."""
