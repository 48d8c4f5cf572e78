"""operando.inverse."""

from ._ch import CHFit as CHFit
from ._ch import ch_function_errors as ch_function_errors
from ._ch import coarsening_onset as coarsening_onset
from ._ch import learn_ch as learn_ch
from ._ch import select_snapshots as select_snapshots
from ._ch import smoothness_weights as smoothness_weights
from ._kinetics import KineticsFit as KineticsFit
from ._kinetics import kinetics_errors as kinetics_errors
from ._kinetics import kinetics_setup as kinetics_setup
from ._kinetics import learn_kinetics as learn_kinetics
from ._kinetics import pixel_correlation as pixel_correlation
from ._kinetics import prepare_kinetics as prepare_kinetics
from ._least_squares import IterationInfo as IterationInfo
from ._least_squares import LeastSquaresResult as LeastSquaresResult
from ._least_squares import Status as Status
from ._least_squares import least_squares as least_squares
from ._least_squares import propagate_covariance as propagate_covariance
