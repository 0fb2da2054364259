"""vpsbridge: VPS hosting automation behind a thin WHMCS bridge."""

__version__ = "0.1.0"
