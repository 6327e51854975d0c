"""`report paper`: DatasetGAN's Table 1 and its ablations reproduced on CarWorld (docs/paper.md)."""
