//! The one place where the Rhai engine is built, with every limit set explicitly.
//!
//! Scripts get arithmetic, strings, arrays, maps and the read-only snapshot `s`; no `eval`, no
//! clock (`no_time`), no file or network access, no custom syntax, and imports only of sibling
//! files of the rule folder, resolved at compile time. Limits bound what a script can cost: a
//! runaway loop, a string bomb or a deep recursion ends as a rule error for that evaluation.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rhai::module_resolvers::{DummyModuleResolver, FileModuleResolver};
use rhai::{Dynamic, Engine, EvalAltResult, Module, ModuleResolver, Position};

use super::ScriptSnapshot;
use super::schema::PROPERTIES;

/// Operations per evaluation. The default strategy uses a few thousand; a loop that runs away is
/// stopped at this budget.
pub const MAX_OPERATIONS: u64 = 100_000;
/// Nested function calls (also bounds recursion).
pub const MAX_CALL_LEVELS: usize = 32;
/// Nesting of expressions at the top level and inside functions.
pub const MAX_EXPR_DEPTH: (usize, usize) = (64, 32);
/// Bytes in one string.
pub const MAX_STRING_SIZE: usize = 4_096;
/// Items in one array.
pub const MAX_ARRAY_SIZE: usize = 1_024;
/// Entries in one map.
pub const MAX_MAP_SIZE: usize = 256;
/// Variables alive at once.
pub const MAX_VARIABLES: usize = 256;
/// Functions in a rule set.
pub const MAX_FUNCTIONS: usize = 256;
/// Modules a rule set may import.
pub const MAX_MODULES: usize = 16;

thread_local! {
    static OPERATIONS: Cell<u64> = const { Cell::new(0) };
}

/// Clears the operation count of this thread, before an evaluation.
pub(crate) fn reset_operations() {
    OPERATIONS.with(|c| c.set(0));
}

/// Returns the operations used by the last evaluation on this thread.
pub(crate) fn operations() -> u64 {
    OPERATIONS.with(Cell::get)
}

/// Resolves `import "name"` to `<rule folder>/name.rhai`, and nothing else.
struct FolderResolver {
    dir: PathBuf,
    files: FileModuleResolver,
}

impl FolderResolver {
    fn check(&self, path: &str, pos: Position) -> Result<(), Box<EvalAltResult>> {
        let plain = !path.is_empty()
            && path
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if plain {
            Ok(())
        } else {
            Err(EvalAltResult::ErrorModuleNotFound(
                format!(
                    "{path} (only sibling files of {} can be imported, by plain name such as \"menthorq\")",
                    self.dir.display()
                ),
                pos,
            )
            .into())
        }
    }
}

impl ModuleResolver for FolderResolver {
    fn resolve(
        &self,
        engine: &Engine,
        source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<Arc<Module>, Box<EvalAltResult>> {
        self.check(path, pos)?;
        self.files.resolve(engine, source, path, pos)
    }
}

/// Builds the engine. With `rule_dir`, imports resolve to sibling files of that folder (for
/// compiling); without, any import fails (for evaluating self-contained rule sets).
pub fn build_engine(rule_dir: Option<&Path>) -> Engine {
    let mut engine = configured(rule_dir);
    // `eval` would run code that no compile step has checked.
    engine.disable_symbol("eval");
    engine
}

/// The engine `check-rules` parses with: the same limits and resolver, but no optimization (so
/// every expression the author wrote is still in the AST to be checked) and `eval` parsed as
/// a call (so that it is reported as a forbidden construct with a fix, not as a syntax error).
pub fn lint_engine(rule_dir: &Path) -> Engine {
    let mut engine = configured(Some(rule_dir));
    engine.set_optimization_level(rhai::OptimizationLevel::None);
    engine
}

fn configured(rule_dir: Option<&Path>) -> Engine {
    let mut engine = Engine::new();
    engine
        .set_max_operations(MAX_OPERATIONS)
        .set_max_call_levels(MAX_CALL_LEVELS)
        .set_max_expr_depths(MAX_EXPR_DEPTH.0, MAX_EXPR_DEPTH.1)
        .set_max_string_size(MAX_STRING_SIZE)
        .set_max_array_size(MAX_ARRAY_SIZE)
        .set_max_map_size(MAX_MAP_SIZE)
        .set_max_variables(MAX_VARIABLES)
        .set_max_functions(MAX_FUNCTIONS)
        .set_max_modules(MAX_MODULES)
        .set_strict_variables(true)
        .set_fail_on_invalid_map_property(true)
        .set_optimization_level(rhai::OptimizationLevel::Full);
    engine.on_print(|text| tracing::info!(target: "rules", "{text}"));
    engine.on_debug(|text, source, pos| tracing::debug!(target: "rules", source = source.unwrap_or(""), %pos, "{text}"));
    engine.on_progress(|ops| {
        OPERATIONS.with(|c| c.set(ops));
        None
    });
    match rule_dir {
        Some(dir) => {
            let mut files = FileModuleResolver::new_with_path_and_extension(dir, "rhai");
            // Each compile reads the files again: a hot reload must see the new text.
            files.enable_cache(false);
            engine.set_module_resolver(FolderResolver {
                dir: dir.to_owned(),
                files,
            });
        }
        None => {
            engine.set_module_resolver(DummyModuleResolver::new());
        }
    }
    engine.register_type_with_name::<ScriptSnapshot>("Snapshot");
    for (slot, property) in PROPERTIES.iter().enumerate() {
        engine.register_get(property.name, move |s: &mut ScriptSnapshot| -> Dynamic {
            s.0[slot].clone()
        });
    }
    engine
}
