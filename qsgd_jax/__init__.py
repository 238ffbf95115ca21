"""qsgd_jax: a differentiable JAX simulator of quantum algorithms for (stochastic) gradient descent.

The public API is re-exported here; modules whose names start with an underscore are private.
"""

from importlib.metadata import PackageNotFoundError, version as _version

from ._errors import (
    MemoryLimitError as MemoryLimitError,
    check_finite_tree as check_finite_tree,
)

try:
    __version__ = _version("qsgd_jax")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

from ._adapters import (
    LOSSES as LOSSES,
    EquinoxLoss as EquinoxLoss,
    NNXLoss as NNXLoss,
    from_equinox as from_equinox,
    from_nnx as from_nnx,
)
from ._budget import (
    ErrorBudget as ErrorBudget,
    error_budget as error_budget,
    gradient_flow as gradient_flow,
)
from ._burgers import (
    BurgersProblem as BurgersProblem,
    burgers_carleman as burgers_carleman,
    burgers_errors as burgers_errors,
    burgers_euler as burgers_euler,
    burgers_problem as burgers_problem,
    burgers_r_number as burgers_r_number,
    burgers_reference as burgers_reference,
)
from ._carleman import (
    CarlemanOperator as CarlemanOperator,
    carleman as carleman,
    carleman_bytes as carleman_bytes,
    carleman_dim as carleman_dim,
)
from ._circuit import (
    MAX_QUBITS as MAX_QUBITS,
    LCUCircuit as LCUCircuit,
    PostSelection as PostSelection,
    block_encoding as block_encoding,
    check_qubits as check_qubits,
    lcu_circuit as lcu_circuit,
    prepare_unitary as prepare_unitary,
    run_lcu as run_lcu,
)
from ._condition import (
    ConditionEstimate as ConditionEstimate,
    HistoryReport as HistoryReport,
    affine_gd_map as affine_gd_map,
    amplification_rounds as amplification_rounds,
    condition_number as condition_number,
    history_report as history_report,
    target_probability as target_probability,
)
from ._data import (
    Batch as Batch,
    Dataset as Dataset,
    batch_at as batch_at,
    check_labels as check_labels,
    load_cifar as load_cifar,
    load_digits as load_digits,
    load_mnist1d as load_mnist1d,
    make_batches as make_batches,
    resize_images as resize_images,
    teacher_student as teacher_student,
)
from ._dissipation import (
    Dissipation as Dissipation,
    dissipation as dissipation,
    dissipation_bytes as dissipation_bytes,
    unfolding_norm as unfolding_norm,
)
from ._evolve import (
    CarlemanError as CarlemanError,
    Trajectory as Trajectory,
    carleman_error as carleman_error,
    evolve as evolve,
    gd_trajectory as gd_trajectory,
)
from ._factored import (
    AbstractCarlemanState as AbstractCarlemanState,
    DenseState as DenseState,
    FactoredState as FactoredState,
    FactoredY as FactoredY,
)
from ._field import AbstractField as AbstractField, DenseField as DenseField
from ._history import (
    HistorySystem as HistorySystem,
    StepMaps as StepMaps,
    TaylorHistorySystem as TaylorHistorySystem,
    history_system as history_system,
    taylor_history_system as taylor_history_system,
)
from ._hybrid import (
    HybridConfig as HybridConfig,
    HybridResult as HybridResult,
    hybrid_run as hybrid_run,
    model_evaluate as model_evaluate,
    plot_hybrid as plot_hybrid,
)
from ._lanczos import (
    lanczos_memory_bytes as lanczos_memory_bytes,
    lanczos_tridiag as lanczos_tridiag,
)
from ._loss_model import (
    ActiveSet as ActiveSet,
    LossField as LossField,
    active_set as active_set,
    dense_field as dense_field,
    taylor_field as taylor_field,
)
from ._models import (
    CNN as CNN,
    MLP as MLP,
    RESNET_CONFIGS as RESNET_CONFIGS,
    BasicBlock as BasicBlock,
    BatchNormTrain as BatchNormTrain,
    CifarResNet as CifarResNet,
    Model as Model,
    make_cnn as make_cnn,
    make_mlp as make_mlp,
    make_resnet as make_resnet,
    named_resnet as named_resnet,
)
from ._optax_window import (
    QuantumWindowState as QuantumWindowState,
    quantum_window_optimizer as quantum_window_optimizer,
)
from ._plots_spectrum import (
    plot_error_propagation as plot_error_propagation,
    plot_spectral_densities as plot_spectral_densities,
)
from ._polynomial import (
    PolynomialMap as PolynomialMap,
    field_map as field_map,
    gd_map as gd_map,
    polynomial_map as polynomial_map,
)
from ._progress import (
    PROGRESS_ENV_VAR as PROGRESS_ENV_VAR,
    progress as progress,
    progress_counter as progress_counter,
)
from ._propagation import (
    PaperProxy as PaperProxy,
    PropagationCurve as PropagationCurve,
    error_propagation as error_propagation,
    paper_error_proxy as paper_error_proxy,
    paper_proxy_from_spectrum as paper_proxy_from_spectrum,
    propagation_from_spectrum as propagation_from_spectrum,
)
from ._prune import (
    apply_mask as apply_mask,
    check_mask as check_mask,
    count_active as count_active,
    default_prunable as default_prunable,
    keep_pruned_zero as keep_pruned_zero,
    magnitude_keep as magnitude_keep,
    prunable_leaves as prunable_leaves,
    prune_mask as prune_mask,
    sparse_scratch as sparse_scratch,
    sparsity_of as sparsity_of,
)
from ._pruned_window import pruned_window_error as pruned_window_error
from ._readout import (
    AbstractReadout as AbstractReadout,
    AmplitudeEstimation as AmplitudeEstimation,
    Exact as Exact,
    GaussianSurrogate as GaussianSurrogate,
    KnownNorm as KnownNorm,
    Readout as Readout,
    Sampled as Sampled,
    UploadCost as UploadCost,
    ae_error_bound as ae_error_bound,
    amplitude_estimation as amplitude_estimation,
    amplitude_estimation_probs as amplitude_estimation_probs,
    download as download,
    estimate_norm as estimate_norm,
    interference_rounds as interference_rounds,
    multinomial_counts as multinomial_counts,
    shots_for_error as shots_for_error,
    tomography as tomography,
    tomography_error_bound as tomography_error_bound,
    tomography_mean as tomography_mean,
    tomography_std as tomography_std,
    upload_cost as upload_cost,
)
from ._resources import (
    break_even_n as break_even_n,
    childs_kothari_somma_queries as childs_kothari_somma_queries,
    classical_flops as classical_flops,
    costa_queries as costa_queries,
    hhl_queries as hhl_queries,
    num_qubits as num_qubits,
    resource_table as resource_table,
    sgd_step_time as sgd_step_time,
    table_markdown as table_markdown,
    total_cost as total_cost,
)
from ._spectrum import (
    SpectralDensity as SpectralDensity,
    broaden_density as broaden_density,
    broadening_sigma as broadening_sigma,
    hessian_operator as hessian_operator,
    hessian_spectrum as hessian_spectrum,
    slq_spectrum as slq_spectrum,
    stack_batches as stack_batches,
)
from ._status import RESULTS as RESULTS, NonFiniteError as NonFiniteError
from ._sweep import (
    Grid as Grid,
    SweepResult as SweepResult,
    check_range as check_range,
    grid as grid,
    points as points,
    sweep as sweep,
    sweep_target as sweep_target,
)
from ._sweep_targets import (
    history_kappa as history_kappa,
    masked_field as masked_field,
    model_window_error as model_window_error,
    readout_error as readout_error,
    top_magnitude_index as top_magnitude_index,
    toy_window_error as toy_window_error,
)
from ._evolution import (
    AbstractEvolution as AbstractEvolution,
    Discrete as Discrete,
    Euler as Euler,
    Expm as Expm,
    LCUReport as LCUReport,
    TaylorEvolution as TaylorEvolution,
    TruncatedTaylor as TruncatedTaylor,
    taylor_evolve as taylor_evolve,
)
from ._taylor import (
    block_encoding_normalization as block_encoding_normalization,
    lcu_coefficient_sum as lcu_coefficient_sum,
    operator_norm_estimate as operator_norm_estimate,
    required_order as required_order,
    taylor_apply as taylor_apply,
    taylor_coefficients as taylor_coefficients,
    taylor_error_bound as taylor_error_bound,
    taylor_matrix as taylor_matrix,
    taylor_truncation_error as taylor_truncation_error,
)
from ._toy import CubicLoss as CubicLoss, random_cubic_loss as random_cubic_loss
from ._window import (
    WindowConfig as WindowConfig,
    WindowReport as WindowReport,
    quantum_window as quantum_window,
)
