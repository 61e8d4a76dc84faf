"""``archc import``: a traced PyTorch module becomes a readable ``.arch`` spec.

Stages, each a function from one representation to the next:

* :mod:`.trace` (torch.fx): ``nn.Module`` -> :class:`~.tree.Network` whose layers are plain
  op calls, module instances kept as :class:`~.tree.Instance` scopes (names = attribute
  names, so state_dict keys survive);
* :mod:`.blocks`: abstracts repeated module classes into parameterised ``block``
  definitions (:class:`~.tree.BlockDef`), runs of identical calls into ``repeat``;
* :mod:`.text`: the tree -> spec text (then ``archc fmt``'s canonical layout).

Only :mod:`.trace` imports torch.
"""
