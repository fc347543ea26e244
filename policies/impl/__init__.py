"""The built-in policies, one module each; :mod:`policies` imports them to register them."""
