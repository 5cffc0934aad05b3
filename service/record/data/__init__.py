"""Package data: reference tables read at run time through importlib.resources."""
