"""Ways to run the same compiled contracts: in process or on a node.

- ``RevmEngine`` (``revm.py``, the default and the fastest): revm, a Rust EVM, in process;
- ``BoaEngine`` (``boa.py``): titanoboa (py-evm) in process;
- ``ChainEngine`` (``chain.py``): signed raw transactions to any node web3
  can reach: ape's embedded chain, an anvil devnet, a testnet or a fork (use
  ``ChainEngine.from_ape()`` inside ``ape run`` / ``ape test``).

All run the sources shipped in ``perpclear/contracts``, compiled once by the
same Vyper (``base.Artifact``, cached on disk), encode and decode with the
same ABI codec (``abi.py``), and expose the same verbs:

- ``deploy(name, *args, sender=...)`` -> address
- ``send([Tx, ...])`` -> one list of ``Event`` per transaction (a revert raises
  ``EngineError`` naming the call and its reason)
- ``call(contract, fn, *args)`` and ``calls([(contract, fn, args), ...])``
- ``logs(addresses, from_block)`` -> decoded ``Record``s in chain order (what
  the audit reads), ``block_number()`` and ``code(address)``
- ``timestamp()``, ``advance(seconds)`` and ``with snapshot():`` (the chain
  put back after the block), for tests and what-if runs

so everything built on top (the cascade runner, the pytest plugin) runs
unchanged on any of them, and gives identical results.
"""

from perpclear.engine.abi import abi_decode, abi_encode, to_checksum_address
from perpclear.engine.base import (CONTRACTS_DIR, SOURCES, ZERO_CALLER, Artifact, Engine, EngineError, Event, NodeError,
                                   Record, Tx, _revert_text, artifact, as_bytes, as_int, cache_dir)
from perpclear.engine.boa import BoaEngine
from perpclear.engine.chain import DEVNET_CHAIN_IDS, ChainEngine
from perpclear.engine.revm import RevmEngine

IN_PROCESS = {"boa": BoaEngine, "revm": RevmEngine}

__all__ = ["CONTRACTS_DIR", "DEVNET_CHAIN_IDS", "IN_PROCESS", "SOURCES", "ZERO_CALLER", "Artifact", "BoaEngine",
           "ChainEngine", "Engine", "EngineError", "Event", "NodeError", "Record", "RevmEngine", "Tx", "_revert_text",
           "abi_decode", "abi_encode", "artifact", "as_bytes", "as_int", "cache_dir", "to_checksum_address"]
