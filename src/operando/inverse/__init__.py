"""operando.inverse."""

from ._least_squares import IterationInfo as IterationInfo
from ._least_squares import LeastSquaresResult as LeastSquaresResult
from ._least_squares import Status as Status
from ._least_squares import least_squares as least_squares
from ._least_squares import propagate_covariance as propagate_covariance
from ._ch import CHFit as CHFit
from ._ch import ch_function_errors as ch_function_errors
from ._ch import learn_ch as learn_ch
from ._ch import select_snapshots as select_snapshots
