"""Small workflow modules the compiler tests compile and run.

The compiler reads a workflow's source with ``inspect``, so every sample lives in a real
module. ``actions`` holds the actions and the call log they write to; each other module
groups the samples of one construct family. Import them as ``tests.unit.compile_samples.X``
(one module name per file, or ``@workflow`` would see two classes with one name).
"""
