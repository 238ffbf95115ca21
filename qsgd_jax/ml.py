"""Machine-learning satellites: data sets, flax models with a pure loss, adapters for nnx / equinox
models, pruning masks, finiteness checks.

Every name is re-exported from a private module: `import qsgd_jax as qj`, then `qj.ml.NAME`.
"""

from ._adapters import (
    LOSSES as LOSSES,
    EquinoxLoss as EquinoxLoss,
    NNXLoss as NNXLoss,
    from_equinox as from_equinox,
    from_nnx as from_nnx,
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
from ._errors import check_finite_tree as check_finite_tree
from ._hybrid import model_evaluate as model_evaluate, pretrain as pretrain
from ._loss_model import (
    ActiveSet as ActiveSet,
    active_set as active_set,
    dense_field as dense_field,
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
