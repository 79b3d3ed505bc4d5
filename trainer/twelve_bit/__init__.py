"""The 12-bit task of Shwartz-Ziv & Tishby and its small MLP, noisy variant included.

* :mod:`trainer.twelve_bit.data`: the 4,096 x 12-bit patterns with binary labels (``var_u.mat``,
  shipped in this package), a seeded train/validation split, all patterns for the dump;
* :mod:`trainer.twelve_bit.model`: the fully connected 12-10-7-5-4-3-2 network (tanh or relu hidden
  layers, softmax output), with optional Gaussian noise N(0, beta^2) after every hidden
  activation (Goldfeld et al.);
* :mod:`trainer.twelve_bit.task`: the task the loop of :mod:`trainer.train` trains: ~10^4
  cheap epochs, dumped on a log-spaced epoch schedule into the same store contract as the CNNs.
"""
