//! The few messages of the Spark Connect protocol the push-down sends and reads, written with
//! `prost`'s derive from Apache Spark's `spark/connect/{base,relations,commands}.proto`
//! (Apache License 2.0; the field numbers below are theirs). Fields kanta does not use are
//! left out: protobuf readers skip unknown fields, so the server's extra fields are ignored.

/// `spark.connect.ExecutePlanRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExecutePlanRequest {
    /// A UUID naming the session on the server.
    #[prost(string, tag = "1")]
    pub session_id: String,
    /// Who asks.
    #[prost(message, optional, tag = "2")]
    pub user_context: Option<UserContext>,
    /// What to run.
    #[prost(message, optional, tag = "3")]
    pub plan: Option<Plan>,
    /// The client, for the server's logs.
    #[prost(string, optional, tag = "4")]
    pub client_type: Option<String>,
}

/// `spark.connect.UserContext`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct UserContext {
    /// The user id.
    #[prost(string, tag = "1")]
    pub user_id: String,
    /// The user name.
    #[prost(string, tag = "2")]
    pub user_name: String,
}

/// `spark.connect.Plan`: a relation to collect or a command to run.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Plan {
    /// Which.
    #[prost(oneof = "plan::OpType", tags = "1, 2")]
    pub op_type: Option<plan::OpType>,
}

/// `Plan`'s one-of.
pub mod plan {
    /// `op_type`.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum OpType {
        /// `root`: a relation whose rows come back.
        #[prost(message, tag = "1")]
        Root(super::Relation),
        /// `command`.
        #[prost(message, tag = "2")]
        Command(super::Command),
    }
}

/// `spark.connect.Relation`, with the two kinds kanta builds.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Relation {
    /// Which.
    #[prost(oneof = "relation::RelType", tags = "10, 11")]
    pub rel_type: Option<relation::RelType>,
}

/// `Relation`'s one-of.
pub mod relation {
    /// `rel_type`.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum RelType {
        /// `sql` (10): a SQL text.
        #[prost(message, tag = "10")]
        Sql(super::Sql),
        /// `local_relation` (11): rows sent with the plan, as an Arrow IPC stream.
        #[prost(message, tag = "11")]
        LocalRelation(super::LocalRelation),
    }
}

/// `spark.connect.SQL`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Sql {
    /// The statement.
    #[prost(string, tag = "1")]
    pub query: String,
}

/// `spark.connect.LocalRelation`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LocalRelation {
    /// An Arrow IPC stream (schema and batches).
    #[prost(bytes = "vec", optional, tag = "1")]
    pub data: Option<Vec<u8>>,
    /// A schema, when `data` has none.
    #[prost(string, optional, tag = "2")]
    pub schema: Option<String>,
}

/// `spark.connect.Command`, with the one kind kanta builds.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Command {
    /// Which.
    #[prost(oneof = "command::CommandType", tags = "3")]
    pub command_type: Option<command::CommandType>,
}

/// `Command`'s one-of.
pub mod command {
    /// `command_type`.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum CommandType {
        /// `create_dataframe_view` (3).
        #[prost(message, tag = "3")]
        CreateDataframeView(super::CreateDataFrameViewCommand),
    }
}

/// `spark.connect.CreateDataFrameViewCommand`: a temporary view of a relation.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CreateDataFrameViewCommand {
    /// The rows.
    #[prost(message, optional, tag = "1")]
    pub input: Option<Relation>,
    /// The view's name.
    #[prost(string, tag = "2")]
    pub name: String,
    /// A global view (false: the session's).
    #[prost(bool, tag = "3")]
    pub is_global: bool,
    /// Replace a view of that name.
    #[prost(bool, tag = "4")]
    pub replace: bool,
}

/// `spark.connect.ExecutePlanResponse`, with the one part kanta reads.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExecutePlanResponse {
    /// Result rows, when this response carries some.
    #[prost(message, optional, tag = "2")]
    pub arrow_batch: Option<ArrowBatch>,
}

/// `ExecutePlanResponse.ArrowBatch`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ArrowBatch {
    /// Rows in `data`.
    #[prost(int64, tag = "1")]
    pub row_count: i64,
    /// An Arrow IPC stream.
    #[prost(bytes = "vec", tag = "2")]
    pub data: Vec<u8>,
}
