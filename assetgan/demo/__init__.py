"""`assetgan demo`: the whole chain, 2D and 3D, on the embedded default, with an HTML report."""
