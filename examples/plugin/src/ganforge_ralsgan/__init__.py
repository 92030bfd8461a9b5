"""An example ganforge plugin: the relativistic average LSGAN loss (``loss.name=ralsgan``) and
a dataset of concentric rings (``data.name=rings``), registered through entry points.

Nothing here imports ganforge beyond :mod:`ganforge.plugin`, the interface plugins may use.
"""
