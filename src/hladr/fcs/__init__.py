"""FCS and LMD files: ``read`` (-> ``Events``, the only core code that opens files), ``describe``, ``write``."""
