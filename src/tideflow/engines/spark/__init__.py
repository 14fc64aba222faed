"""The ``spark`` engine: jobs whose processors take and return Spark DataFrames."""
