"""Rewrite patterns, one module per op family: ``binary`` (layers on signs),
``int8`` (layers on int8 values before a sign), ``shift`` (layers on int8 values
with a shift-family kernel of codes through a table), ``outputs`` (what every
accumulator op shares: transforms, max-pools and flatten on packed signs),
``signs`` (binarize, unpack, leaving a residual stream)."""
