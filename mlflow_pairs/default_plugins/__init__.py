"""Built-in plugins, registered through the same hooks as installed ones.

* :mod:`.sample`: the bundled S&P 500 sample prices and one universe per sector in it;
* :mod:`.files`: the ``csv`` and ``parquet`` sources behind ``--prices FILE``;
* :mod:`.features`: the core features of the sequence model.
"""
