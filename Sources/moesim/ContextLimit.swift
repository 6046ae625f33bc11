import ArgumentParser
import ModelSpec

/// Contexts past a model's `max_position_embeddings` are refused unless asked for: positions the
/// model was never trained on are a what-if, not a plan.
enum ContextLimit {
    static func check(_ context: Int, model: ModelSpec, allowLonger: Bool) throws {
        guard !allowLonger, context > model.maxPositionEmbeddings else { return }
        throw ValidationError("--context \(context.formatted()) exceeds \(model.id)'s \(model.maxPositionEmbeddings.formatted()) tokens "
            + "(max_position_embeddings); pass --allow-longer-context to plan it anyway")
    }
}
