"""Reading and writing operando datasets and results (see ``docs/dataset-schema.md``)."""

from ._atomic import atomic_path as atomic_path
from ._atomic import write_json as write_json
from ._models import read_model_dir as read_model_dir
from ._models import write_model_dir as write_model_dir
from ._registry import READERS as READERS
from ._registry import read_dataset as read_dataset
from ._registry import register_reader as register_reader
from ._registry import split_spec as split_spec
from ._registry import write_dataset as write_dataset
from ._summary import file_sha256 as file_sha256
from ._summary import input_checksums as input_checksums
from ._summary import write_summary as write_summary
